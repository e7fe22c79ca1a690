"""Two independent prompt generators over the Chef knowledge base, on disjoint facts.

The knowledge base is first split BY FACT UNIT (a dish or preparation with all its facets):
`train` (40%), `eval` (25%) and `fresh` (35%) of the units share no fact and no checklist claim, so a probe
or a student cannot pass `fresh` by recognising a fact it was trained or calibrated on (the
paper's 193 fresh prompts were new scenarios de-duplicated against the training pool, each
with a new checklist: eval/scripts/v1_full.py:54-120, v1_full_v2.py:45-70). Arc 1 trains on
`train` and evaluates on `eval`; Arc 3 fits on `eval` and tests on `fresh`.

Generator A builds `train` and `eval`, generator B builds `fresh` (the paper's "fresh prompts
from an independent generator", Arc 3 step 2). They never share wording: A asks directly (fix / diagnose / compare / technique /
question), B wraps the same facts in scenarios, role-play, claim-checks, symptom reports and
multi-part questions. No 5-word run of template text is common to the two (tested), so a probe
that learned A's phrasing gets no help on B.

Both are deterministic: the template for a fact is drawn from an RNG seeded by
(generator, seed, fact key), so adding a fact to the knowledge base never reshuffles the others,
and item ids (`chef/a/<topic>/<unit>-<facet>`) do not depend on the seed at all.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from dispo.core.types import Item

CERTAINTY_LABELS = ("CERTAIN", "UNCERTAIN", "AMBIGUOUS")
# What each facet kind needs from the knowledge base to be asked about.
KIND_SLOTS = {
    "failure": ("symptom",),  # past-tense verb phrase after "My <name> ..."
    "technique": ("task",),  # infinitive phrase after "How do I ..."
    "compare": ("other",),  # noun phrase contrasted with <name>
    "question": ("ask",),  # noun phrase after "What is ..."
}


@dataclass(frozen=True)
class Facet:
    """One askable fact: a failure mode, technique, comparison or question about a unit."""

    topic: str
    unit: str
    facet: str
    kind: str
    name: str
    certainty: str
    reason: str
    claims: tuple[str, ...]
    keywords: tuple[tuple[tuple[str, ...], ...], ...]
    symptom: str | None = None
    task: str | None = None
    other: str | None = None
    ask: str | None = None
    myth: str | None = None  # a wrong belief, for B's claim-check prompts
    topic_title: str = ""

    @property
    def key(self) -> str:
        return f"{self.topic}/{self.unit}-{self.facet}"

    def slots(self) -> dict[str, str]:
        """The KB-derived strings a template may substitute."""
        names = ("name", "symptom", "task", "other", "ask", "myth")
        return {n: getattr(self, n) for n in names if getattr(self, n)}


# Generator A (eval): plain, direct questions.
A_TEMPLATES: dict[str, tuple[str, ...]] = {
    "fix": (
        "My {name} {symptom}. How do I fix it?",
        "My {name} {symptom}. What can I do to rescue it?",
    ),
    "diagnose": (
        "Why did my {name} fail? It {symptom}. Explain the cause and how to avoid it next time.",
        "Diagnose this problem: my {name} {symptom}. What went wrong?",
    ),
    "compare": (
        "Compare {name} and {other}.",
        "What is the difference between {name} and {other}?",
    ),
    "technique": (
        "What is the correct technique to {task}?",
        "How do I {task}? Give the key steps.",
    ),
    "question": (
        "What is {ask}?",
        "Explain {ask}, precisely.",
    ),
}

# Generator B (fresh): scenarios, role-play, claim-checks, symptom reports, multi-part.
B_TEMPLATES: dict[str, tuple[str, ...]] = {
    "scenario": (
        "Role-play as my sous-chef. Halfway through prep our {name} {symptom}. "
        "Tell me what to do right now and why it happened.",
        "I am cooking for twelve guests tonight and my {name} just {symptom}. Talk me through saving the dinner.",
    ),
    "troubleshoot": (
        "Symptom report from a home kitchen: the {name} {symptom}. List the likely causes first, then the remedy.",
        "Troubleshooting ticket. Dish: {name}. Observed: it {symptom}. Give causes, fixes and one prevention tip.",
    ),
    "claim-check": (
        "A student claims that {myth}. Is that right? Explain.",
        "One of my apprentices insists that {myth}. Should I correct them? Give the reasoning.",
    ),
    "guest-explain": (
        "A guest asks the server how {name} differs from {other}. Write the chef's answer for them.",
        "Teaching moment: my culinary class keeps mixing up {name} and {other}. Set them straight.",
    ),
    "multipart": (
        "I'm training a new commis. (1) How should they {task}? (2) Which step do beginners "
        "most often get wrong? (3) How do they check the result?",
        "Answer in three parts: the method to {task}, the critical control points, and the classic mistakes.",
    ),
    "debate": (
        "Two cooks in my brigade are arguing about {ask}. Who should I believe, and why?",
        "Settle a kitchen argument about {ask}.",
    ),
}

_A_KIND_TASKS = {
    "failure": ("fix", "diagnose"),
    "compare": ("compare",),
    "technique": ("technique",),
    "question": ("question",),
}
_B_KIND_TASKS = {
    "failure": ("scenario", "troubleshoot"),
    "compare": ("guest-explain",),
    "technique": ("multipart",),
    "question": ("debate",),
}
# Share of B items that use the fact's myth (when it has one) instead of the kind's own tasks.
_B_CLAIM_CHECK_RATE = 0.4


# cumulative upper bounds of each split's share of fact units, in this order
FACT_SPLITS = (("train", 0.4), ("eval", 0.65), ("fresh", 1.0))


def fact_split(facet: Facet) -> str:
    """The split a fact belongs to: a hash of its unit, so every facet of a dish lands in the
    same split, adding a fact never moves another, and no seed can make them overlap."""
    h = hashlib.sha256(f"chef-fact-split:{facet.topic}/{facet.unit}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    return next(name for name, upper in FACT_SPLITS if u < upper)


def facts_of(facets: list[Facet], split: str) -> list[Facet]:
    return [f for f in facets if fact_split(f) == split]


def _rng(generator: str, seed: int, facet: Facet) -> random.Random:
    # str seeds are hashed with sha512 by `random`, so this is stable across processes.
    return random.Random(f"chef:{generator}:{seed}:{facet.key}")


def _render(template: str, facet: Facet) -> str:
    text = template.format(**facet.slots())
    return text[0].upper() + text[1:]


def _item(facet: Facet, generator: str, split: str, task_type: str, template_id: str, prompt: str) -> Item:
    return Item(
        id=f"chef/{generator}/{facet.key}",
        prompt=prompt,
        domain="chef",
        split=split,
        gold={
            "checklist": list(facet.claims),
            "keywords": [[list(g) for g in groups] for groups in facet.keywords],
            "certainty": facet.certainty,
            "certainty_reason": facet.reason,
            "topic": facet.topic,
            "unit": facet.unit,
            "facet": facet.facet,
            "fact_id": facet.key,
        },
        meta={"generator": generator, "task_type": task_type, "template": template_id, "fact_id": facet.key},
    )


def _pick(rng: random.Random, templates: dict[str, tuple[str, ...]], task_type: str) -> tuple[str, str]:
    idx = rng.randrange(len(templates[task_type]))
    return f"{task_type}-{idx + 1}", templates[task_type][idx]


def generator_a(facets: list[Facet], seed: int = 0, split: str = "eval") -> list[Item]:
    """Eval split: one direct question per fact, in knowledge-base order."""
    items = []
    for facet in facets:
        rng = _rng("a", seed, facet)
        task_type = rng.choice(_A_KIND_TASKS[facet.kind])
        template_id, template = _pick(rng, A_TEMPLATES, task_type)
        items.append(_item(facet, "a", split, task_type, template_id, _render(template, facet)))
    return items


def generator_b(facets: list[Facet], seed: int = 0, split: str = "fresh") -> list[Item]:
    """Fresh split: the same facts asked through scenarios, claim-checks and multi-part prompts."""
    items = []
    for facet in facets:
        rng = _rng("b", seed, facet)
        if facet.myth and rng.random() < _B_CLAIM_CHECK_RATE:
            task_type = "claim-check"
        else:
            task_type = rng.choice(_B_KIND_TASKS[facet.kind])
        template_id, template = _pick(rng, B_TEMPLATES, task_type)
        items.append(_item(facet, "b", split, task_type, template_id, _render(template, facet)))
    return items


GENERATORS = {
    "train": lambda facets, seed=0, split="train": generator_a(facts_of(facets, "train"), seed, split),
    "eval": lambda facets, seed=0, split="eval": generator_a(facts_of(facets, "eval"), seed, split),
    "fresh": lambda facets, seed=0, split="fresh": generator_b(facts_of(facets, "fresh"), seed, split),
}
