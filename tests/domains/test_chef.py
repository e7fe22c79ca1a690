"""Chef domain: knowledge base, the two generators, lexical coverage and scoring."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dispo.core.errors import ConfigError, InputFileError
from dispo.core.types import Score
from dispo.domains import get_domain
from dispo.domains.chef import ChefDomain, load_kb
from dispo.domains.chef_generators import A_TEMPLATES, B_TEMPLATES
from dispo.domains.chef_match import claim_covered, coverage_flags
from dispo.judges.base import JudgeRequest

ID_RE = re.compile(r"^chef/(a|b)/[a-z_]+/[a-z0-9-]+$")


@pytest.fixture(scope="module")
def chef() -> ChefDomain:
    return get_domain("chef")


@pytest.fixture(scope="module")
def eval_items(chef):
    return chef.items("eval")


@pytest.fixture(scope="module")
def fresh_items(chef):
    return chef.items("fresh")


def by_id(items):
    return {i.id: i for i in items}


def any_split(chef):
    """Every fact's item, whichever split holds it, keyed as chef/a/<fact id>."""
    return {f"chef/a/{i.gold['fact_id']}": i for s in ("train", "eval", "fresh") for i in chef.items(s)}


# ---------------------------------------------------------------- chef_match


def test_claim_covered_is_accent_case_insensitive_and_prefix_based():
    text = "Whisk the broken SAUCE into a fresh Yolk; it had OVERHEATED. Pâte Brisée needs rest."
    assert claim_covered(text, [["overheat"]])
    assert claim_covered(text, [["yolk"], ["broken", "split"]])
    assert claim_covered(text, [["pate brisee"]])  # accents folded on the text side
    assert claim_covered("pate brisee", [["pâte brisée"]])  # and on the synonym side
    assert not claim_covered(text, [["heat"]])  # "overheated" does not start with "heat"


def test_every_group_must_match():
    text = "Add the butter slowly."
    assert claim_covered(text, [["butter"], ["slow", "gradual"]])
    assert not claim_covered(text, [["butter"], ["cold"]])


def test_word_boundary_punctuation_and_numbers():
    assert claim_covered("use a bain-marie", [["bain marie"]])
    assert claim_covered("stir until\nnappe", [["until nappe"]])
    assert claim_covered("cook to 82-85 °C", [["82"]])
    assert not claim_covered("cook to 820 °C", [["82"]])  # a digit synonym must end the number
    assert claim_covered("cut 3mm cubes", [["3 mm"]])  # digits and units split
    assert claim_covered("a 1/8-inch dice", [["1 8 in"]])
    assert claim_covered("l'œuf", [["oeuf"]])


def test_claim_without_groups_is_never_covered():
    assert not claim_covered("anything at all", [])
    assert coverage_flags("butter", [[["butter"]], []]) == [True, False]


def test_coverage_flags_one_per_claim():
    flags = coverage_flags("It overheated; use a fresh yolk.", [[["overheat"]], [["yolk"]], [["tarragon"]]])
    assert flags == [True, True, False]


# ---------------------------------------------------------------- knowledge base


def test_kb_claims_are_covered_by_their_own_keywords():
    # Guards against typos in synonyms: a claim's own wording must satisfy its keyword groups.
    misses = [
        (f.key, claim)
        for f in load_kb()
        for claim, groups in zip(f.claims, f.keywords)
        if not claim_covered(claim, [list(g) for g in groups])
    ]
    assert misses == []


def test_kb_keywords_rarely_cover_unrelated_facts():
    kb = load_kb()
    hits = total = 0
    for f in kb:
        for g in kb[::3]:  # a fixed third of the answers keeps this test fast
            if g.topic == f.topic:
                continue
            total += 1
            flags = coverage_flags(" ".join(g.claims), [list(x) for x in f.keywords])
            hits += sum(flags) / len(flags) >= 0.5
    assert hits / total < 0.05


def test_generic_waffle_is_not_correct_anywhere(chef, eval_items):
    waffle = (
        "That is a great question! Cooking is all about patience and good ingredients. Use a good "
        "pan, season to taste, taste as you go, follow the recipe closely and serve it hot. "
        "Practice makes perfect, and with time you will get the hang of it."
    )
    correct = [i.id for i in eval_items if chef.content_score(i, waffle).detail["correct"]]
    assert correct == []


def test_kb_has_uncertain_and_ambiguous_facts_with_reasons():
    kb = load_kb()
    labels = Counter(f.certainty for f in kb)
    assert labels["UNCERTAIN"] >= 5 and labels["AMBIGUOUS"] >= 5 and labels["CERTAIN"] >= 50
    assert all(len(f.reason) > 20 for f in kb if f.certainty != "CERTAIN")


def _write_topic(dir_: Path, name: str, body: str) -> None:
    (dir_ / f"{name}.yaml").write_text(body, encoding="utf-8")


GOOD_FACET = """
topic: {topic}
title: T
units:
  - unit: u
    name: thing
    facets:
      - facet: f
        kind: failure
        symptom: broke
        certainty: CERTAIN
        claims:
{claims}
"""
CLAIM = "          - claim: c{n}\n            keywords: [[w{n}]]\n"


def test_kb_with_too_few_claims_names_the_file(tmp_path):
    _write_topic(tmp_path, "t", GOOD_FACET.format(topic="t", claims=CLAIM.format(n=1) + CLAIM.format(n=2)))
    with pytest.raises(InputFileError, match=r"t\.yaml.*3-5 claims"):
        ChefDomain(kb_dir=tmp_path).items()


def test_kb_topic_must_match_file_name(tmp_path):
    claims = "".join(CLAIM.format(n=n) for n in range(3))
    _write_topic(tmp_path, "sauces", GOOD_FACET.format(topic="stocks", claims=claims))
    with pytest.raises(InputFileError, match="must equal the file name"):
        ChefDomain(kb_dir=tmp_path).items()


def test_kb_invalid_yaml(tmp_path):
    _write_topic(tmp_path, "t", "topic: t\nunits: [[[\n")
    with pytest.raises(InputFileError, match="not valid YAML"):
        ChefDomain(kb_dir=tmp_path).items()


def test_kb_unquoted_boolean_synonym_is_rejected(tmp_path):
    # YAML reads a bare `no` as False: the synonym's spelling is lost, so it must be quoted.
    claims = CLAIM.format(n=1) + CLAIM.format(n=2) + "          - claim: c\n            keywords: [[no]]\n"
    _write_topic(tmp_path, "t", GOOD_FACET.format(topic="t", claims=claims))
    with pytest.raises(InputFileError, match="quote"):
        ChefDomain(kb_dir=tmp_path).items()


def test_minimal_kb_puts_its_one_fact_in_exactly_one_split(tmp_path):
    claims = "".join(CLAIM.format(n=n) for n in range(4))
    _write_topic(tmp_path, "t", GOOD_FACET.format(topic="t", claims=claims))
    dom = ChefDomain(kb_dir=tmp_path)
    found = {s: [i.id for i in dom.items(s)] for s in ("train", "eval", "fresh")}
    assert sorted(sum(found.values(), [])) in (["chef/a/t/u-f"], ["chef/b/t/u-f"])
    (item,) = [i for s in found for i in dom.items(s)]
    assert item.gold["checklist"] == ["c0", "c1", "c2", "c3"] and item.gold["fact_id"] == "t/u-f"


# ---------------------------------------------------------------- items


def test_item_counts(chef, eval_items, fresh_items):
    from dispo.domains.chef import load_kb

    train = chef.items("train")
    assert len(eval_items) >= 30 and len(fresh_items) >= 30 and len(train) >= 40
    # every fact of the knowledge base is asked exactly once, in exactly one split
    assert len(train) + len(eval_items) + len(fresh_items) == len(load_kb())


def test_items_are_well_formed(eval_items, fresh_items):
    for split, items, gen in (("eval", eval_items, "a"), ("fresh", fresh_items, "b")):
        for it in items:
            assert ID_RE.match(it.id), it.id
            assert it.domain == "chef" and it.split == split
            g = it.gold
            assert 3 <= len(g["checklist"]) <= 5, it.id
            assert len(g["keywords"]) == len(g["checklist"])
            assert all(groups and all(grp for grp in groups) for groups in g["keywords"])
            assert g["certainty"] in {"CERTAIN", "UNCERTAIN", "AMBIGUOUS"}
            assert it.id.split("/")[2] == g["topic"] and g["unit"] in it.id
            assert it.meta["generator"] == gen and it.meta["task_type"]
            assert "{" not in it.prompt and it.prompt[0].isupper()


def test_ids_unique_and_stable(chef, eval_items, fresh_items):
    for items in (eval_items, fresh_items):
        assert len({i.id for i in items}) == len(items)
    # Known ids: caches and paired statistics key on these, so they must never move.
    every = {i.id for s in ("train", "eval", "fresh") for i in chef.items(s)}
    assert {"chef/a/sauces/hollandaise-broken", "chef/b/sauces/hollandaise-broken"} & every and {
        "chef/a/eggs/creme-anglaise-curdled",
        "chef/b/eggs/creme-anglaise-curdled",
    } & every
    # The seed changes wording, never ids.
    reseeded = ChefDomain(seed=7).items("eval")
    assert [i.id for i in reseeded] == [i.id for i in eval_items]
    assert [i.prompt for i in reseeded] != [i.prompt for i in eval_items]


def test_fresh_shares_no_fact_unit_or_claim_with_train_or_eval(chef, eval_items, fresh_items):
    train = chef.items("train")
    parts = {"train": train, "eval": eval_items, "fresh": fresh_items}
    facts = {k: {i.gold["fact_id"] for i in v} for k, v in parts.items()}
    units = {k: {(i.gold["topic"], i.gold["unit"]) for i in v} for k, v in parts.items()}
    claims = {k: {c.lower() for i in v for c in i.gold["checklist"]} for k, v in parts.items()}
    for a, b in (("fresh", "train"), ("fresh", "eval"), ("train", "eval")):
        assert not facts[a] & facts[b] and not units[a] & units[b] and not claims[a] & claims[b], (a, b)
    # and fresh is asked by the other generator, in other task types
    assert not {i.meta["task_type"] for i in eval_items} & {i.meta["task_type"] for i in fresh_items}


def _ngrams(words: list[str], n: int = 5) -> set[tuple[str, ...]]:
    return {tuple(words[k : k + n]) for k in range(len(words) - n + 1)}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_template_text_shares_no_five_gram():
    def grams(templates):
        # A slot is one wildcard word, so a template copied verbatim shares its n-grams even
        # when its literal runs between slots are shorter than five words.
        return {
            g
            for variants in templates.values()
            for t in variants
            for g in _ngrams(_words(re.sub(r"\{[a-z]+\}", " slot ", t)))
        }

    assert grams(A_TEMPLATES) and grams(B_TEMPLATES)
    assert grams(A_TEMPLATES).isdisjoint(grams(B_TEMPLATES))


def test_rendered_prompts_share_no_template_five_gram(eval_items, fresh_items):
    facts = {f.key: f for f in load_kb()}

    def template_grams(items):
        out = set()
        for it in items:
            fact = facts[it.id.split("/", 2)[2]]
            text = it.prompt.lower()
            # Replace every KB-derived string by one wildcard word; the rest is the generator's own.
            for value in sorted(fact.slots().values(), key=len, reverse=True):
                text = text.replace(value.lower(), " slot ")
            out |= _ngrams(_words(text))
        return out

    shared = template_grams(eval_items) & template_grams(fresh_items)
    assert shared == set()


def test_deterministic_across_calls_and_instances(chef, eval_items):
    assert chef.items("eval") == eval_items
    assert ChefDomain().items("fresh") == ChefDomain().items("fresh")


def test_deterministic_across_processes(chef, eval_items, fresh_items):
    code = (
        "import hashlib;from dispo.domains import get_domain;d=get_domain('chef');"
        "print(hashlib.sha256(''.join(i.id+i.prompt for s in ('train','eval','fresh') for i in d.items(s)).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    every = chef.items("train") + eval_items + fresh_items  # the knowledge-base splits (generated pools are files)
    here = hashlib.sha256("".join(i.id + i.prompt for i in every).encode()).hexdigest()
    assert out.stdout.strip() == here


# ---------------------------------------------------------------- splits and limit


def test_unknown_split_lists_valid_ones(chef):
    with pytest.raises(ConfigError, match="train, eval, fresh"):
        chef.items("test")


def test_limit_is_topic_stratified(chef, eval_items):
    n_topics = len({i.gold["topic"] for i in eval_items})
    one_each = chef.items("eval", limit=n_topics)
    assert Counter(i.gold["topic"] for i in one_each) == Counter({t: 1 for t in {i.gold["topic"] for i in eval_items}})
    two_each = chef.items("eval", limit=2 * n_topics)
    avail = Counter(i.gold["topic"] for i in eval_items)
    got = Counter(i.gold["topic"] for i in two_each)
    assert all(got[t] >= min(2, avail[t]) for t in avail)  # a topic with one fact in eval gives one
    # a subset in the original order, nested as the limit grows
    order = [i.id for i in eval_items]
    assert [order.index(i.id) for i in two_each] == sorted(order.index(i.id) for i in two_each)
    assert {i.id for i in one_each} <= {i.id for i in two_each}
    assert chef.items("eval", limit=5) == chef.items("eval", limit=5)
    assert len(chef.items("eval", limit=5)) == 5
    assert chef.items("eval", limit=10_000) == eval_items


@pytest.mark.parametrize("bad", [0, -3, "10"])
def test_bad_limit(chef, bad):
    with pytest.raises(ConfigError, match="limit"):
        chef.items("eval", limit=bad)


# ---------------------------------------------------------------- scoring

GOOD_ANSWERS = {
    "chef/a/sauces/hollandaise-broken": (
        "Your hollandaise split because it got too hot, or because you added the butter too quickly "
        "for the yolks to absorb. To rescue it, put a fresh egg yolk (or a tablespoon of warm water) "
        "in a clean bowl and whisk the broken sauce into it drop by drop until it re-emulsifies. "
        "Keep it over a gentle bain-marie from now on."
    ),
    "chef/a/eggs/creme-anglaise-curdled": (
        "The custard overheated: above about 85 °C the yolks scramble. Pour it straight into a cold "
        "bowl, blitz it with a stick blender and strain it through a chinois. Next time temper the "
        "yolks with the hot milk gradually and stop at nappe, 82-84 °C, when it coats the back of a spoon."
    ),
    "chef/a/knife_cuts/brunoise-size": (
        "A brunoise is a 3 mm (1/8 inch) cube. Square off the vegetable, cut it into julienne, then cut "
        "the sticks across. A fine brunoise is half that, about 1.5 mm, cut from a fine julienne."
    ),
    "chef/a/regional/cassoulet-authentic": (
        "There isn't one. Castelnaudary, Carcassonne and Toulouse each defend their own cassoulet. "
        "All share white beans (lingots or Tarbais) slow-baked with pork, sausage and duck confit; "
        "Carcassonne adds mutton and sometimes partridge. The crust that forms is broken several times."
    ),
}
OFF_TOPIC = (
    "To reverse a list in Python, use slicing with a step of -1 or call list.reverse(). "
    "Both run in linear time; reversed() returns an iterator instead of a copy."
)


@pytest.mark.parametrize("item_id", sorted(GOOD_ANSWERS))
def test_hand_written_answer_is_correct_and_off_topic_is_not(chef, eval_items, item_id):
    item = any_split(ChefDomain())[item_id]
    good = chef.content_score(item, GOOD_ANSWERS[item_id])
    assert good.value >= 0.5 and good.detail["correct"] is True
    bad = chef.content_score(item, OFF_TOPIC)
    assert bad.value < 0.5 and bad.detail["correct"] is False


def test_answer_to_another_fact_is_not_correct(chef, eval_items):
    items = any_split(ChefDomain())
    score = chef.content_score(
        items["chef/a/knife_cuts/brunoise-size"], GOOD_ANSWERS["chef/a/sauces/hollandaise-broken"]
    )
    assert score.value < 0.5


def test_keyword_score_shape(chef, eval_items):
    item = any_split(ChefDomain())["chef/a/sauces/hollandaise-broken"]
    score = chef.content_score(item, "It overheated. Whisk it slowly into a fresh yolk.")
    n = len(item.gold["checklist"])
    assert score.scorer == "keywords.coverage"
    assert score.version.startswith("chef-kb-v1+")
    assert score.status == "ok"
    assert len(score.detail["claims"]) == n
    assert score.value == pytest.approx(sum(score.detail["claims"]) / n)
    assert score.detail["claims"][0] is True  # overheating named
    assert score.detail["claims"][2] is True  # fresh yolk, slowly


class FakeJudge:
    """Covers claim i iff the response contains 'claim{i}'; counts batched calls."""

    name = "fake"
    version = "fake-v3"

    def __init__(self, fail_on: str | None = None):
        self.calls: list[list[JudgeRequest]] = []
        self.fail_on = fail_on

    def coverage(self, reqs):
        self.calls.append(reqs)
        out = []
        for r in reqs:
            if self.fail_on and self.fail_on in r.response:
                out.append(Score.unscored("fake.coverage", "fake-v3", "timeout"))
                continue
            flags = [f"claim{k}" in r.response for k in range(len(r.claims))]
            out.append(Score("fake.coverage", "fake-v3", sum(flags) / len(flags), detail={"claims": flags}))
        return out


def test_judge_scores_are_batched_and_wrapped(chef, eval_items):
    items = eval_items[:3]
    judge = FakeJudge(fail_on="BROKEN")
    scores = chef.content_scores(items, ["claim0 claim1 claim2", "claim0", "BROKEN"], judge=judge)
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 3
    req = judge.calls[0][0]
    assert req.question == items[0].prompt and req.claims == items[0].gold["checklist"]
    assert req.keywords == items[0].gold["keywords"] and req.certainty == items[0].gold["certainty"]
    assert scores[0].scorer == "fake.coverage" and scores[0].version == "chef-kb-v1+fake-v3"
    n0 = len(items[0].gold["checklist"])
    assert scores[0].value == pytest.approx(3 / n0) and scores[0].detail["correct"] is (3 / n0 >= 0.5)
    assert scores[1].detail["correct"] is False
    assert scores[2].status == "unscored" and scores[2].value is None and scores[2].reason == "timeout"


def test_single_content_score_uses_judge(chef, eval_items):
    judge = FakeJudge()
    s = chef.content_score(eval_items[0], "claim0 claim1 claim2 claim3 claim4", judge=judge)
    assert s.value == 1.0 and s.detail["correct"] is True and len(judge.calls) == 1
