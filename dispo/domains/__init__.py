"""Domains: items, prompts, gold and content scoring. Selected with `domain=NAME`."""

from dispo.core.registry import Registry

DOMAINS: Registry = Registry("domain")
DOMAINS.lazy("code", "dispo.domains.code")
DOMAINS.lazy("chef", "dispo.domains.chef")
DOMAINS.lazy("mcas", "dispo.domains.mcas")
DOMAINS.lazy("recovery", "dispo.domains.recovery")
DOMAINS.lazy("imported", "dispo.domains.imported")  # items of an imported harness log (dispo import)


def get_domain(name: str, **kwargs):
    return DOMAINS.get(name)(**kwargs)
