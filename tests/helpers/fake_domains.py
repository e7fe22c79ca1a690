"""Small made-up chef domains for arc tests: labels are known by construction, so a test can
check what the arc computed from them."""

from __future__ import annotations

from dispo.core.types import Item, Score
from dispo.domains.base import Domain


class CohortChef(Domain):
    """Eight questions, half CERTAIN and half UNCERTAIN (the lexical rubric's hedging axis then
    splits tiny-model noise into two cohorts); content = the output mentions a gold word."""

    name = "fakechef"
    splits = ("eval",)

    def __init__(self, n: int = 8):
        self._items = [
            Item(
                id=f"q{i}",
                prompt=f"Question {i}: why did my {w} fail, and how do I fix it?",
                domain="fakechef",
                gold={
                    "certainty": "CERTAIN" if i % 2 == 0 else "UNCERTAIN",
                    "checklist": ["heat"],
                    "keywords": [["heat"]],
                },
            )
            for i, w in zip(range(n), ["sauce", "roux", "souffle", "custard", "bread", "stock", "tart", "ganache"] * 4)
        ]

    def items(self, split="eval", limit=None):
        return self._items[: limit or None]

    def content_score(self, item, output, judge=None):
        return Score(scorer="fakechef.correct", version="v1", value=len(output) % 3 == 0)


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
]


class FakeChef(Domain):
    """12 items per split; item k is correct iff k is even (coverage 1.0 vs 0.0), whatever the output."""

    name = "chef"
    version = "fake-v1"
    splits = ("eval", "fresh")

    def items(self, split="eval", limit=None):
        out = []
        for k, dish in enumerate(DISHES):
            prompt = (
                f"My {dish} went wrong. How do I fix it?"
                if split == "eval"
                else f"A student swears their {dish} failed because of the pan. Is that right, chef?"
            )
            out.append(
                Item(
                    id=f"fake/{split}/{k}",
                    prompt=prompt,
                    domain="chef",
                    split=split,
                    gold={
                        "checklist": ["a", "b", "c"],
                        "keywords": [["heat"], ["whisk"], ["slowly"]],
                        "certainty": "CERTAIN",
                    },
                )
            )
        return out[:limit] if limit else out

    @staticmethod
    def truth(item_id: str) -> int:
        return int(int(item_id.rsplit("/", 1)[1]) % 2 == 0)

    def content_score(self, item, output, judge=None):
        v = float(self.truth(item.id))
        return Score(scorer="keywords.coverage", version="fake-v1", value=v, detail={"correct": v >= 0.5})
