"""Made-up Chef prompt + response pairs shared by the forward-pass benchmarks (features,
attribution): varied lengths, no model needed to produce them."""

from __future__ import annotations

DISHES = [
    "hollandaise",
    "bearnaise",
    "mayonnaise",
    "souffle",
    "roux",
    "veloute",
    "genoise",
    "pate a choux",
    "creme anglaise",
    "beurre blanc",
    "consomme",
    "puff pastry",
    "caramel",
    "ganache",
    "brioche",
    "risotto",
]
SYMPTOMS = [
    "split into greasy curds",
    "tastes floury",
    "collapsed in the oven",
    "went grainy",
    "is too thin",
    "turned cloudy",
    "seized",
    "came out dense",
]
FIXES = [
    "Take it off the heat, whisk a spoon of warm water into a clean bowl and add the broken sauce drop by drop.",
    "Cook the flour and butter longer, two to three minutes, until it smells nutty, before adding the liquid.",
    "Do not open the oven door in the first twenty minutes; fold the whites in gently so the foam keeps its air.",
    "Seed it with a few crystals, stir less, and keep the temperature steady; a splash of lemon juice helps too.",
]
HEDGED_FIX = "I am not completely sure without seeing it, but the usual cause is heat: check the temperature first."


def pairs(n: int, fixes: list[str] = FIXES, max_sentences: int = 4) -> tuple[list[list[dict]], list[str]]:
    """n (chat prompt, response) pairs; response i has 1 + i % max_sentences sentences of `fixes`."""
    prompts, responses = [], []
    for i in range(n):
        dish, sym = DISHES[i % len(DISHES)], SYMPTOMS[(i * 3) % len(SYMPTOMS)]
        q = f"My {dish} {sym}. What went wrong and how do I fix it?"
        if i % 3 == 0:
            q += " I followed the recipe exactly and used a heavy pan, fresh eggs and good butter."
        prompts.append([{"role": "user", "content": q}])
        responses.append(" ".join(fixes[(i + k) % len(fixes)] for k in range(1 + i % max_sentences)))
    return prompts, responses
