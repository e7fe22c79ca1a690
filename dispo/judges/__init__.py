"""Judges, registered by name and selected with `judge=NAME`."""

from dispo.core.registry import Registry

JUDGES: Registry = Registry("judge")
JUDGES.lazy("lexical", "dispo.judges.lexical")
JUDGES.lazy("hf", "dispo.judges.hf")
JUDGES.lazy("openai", "dispo.judges.openai")
JUDGES.lazy("tone", "dispo.judges.tone")
JUDGES.lazy("paper", "dispo.judges.paper")  # the release's own judges (protocol=paper)


def get_judge(name: str, **kwargs):
    return JUDGES.get(name)(**kwargs)
