"""Teacher-generated chef pools: the dedup rule, parsing of messy output, the exact messages,
fact/claim disjointness, resume, and bad settings (dispo.domains.prompt_pool)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from dispo.core.errors import ConfigError
from dispo.domains.chef import ChefDomain, load_kb
from dispo.domains.prompt_pool import (
    DedupRule,
    PoolPrompts,
    PoolSettings,
    dedup,
    derived_keywords,
    generate_chef_pool,
    jaccard,
    parse_claims,
    parse_scenarios,
    pool_paths,
    shingles,
)

REPO_TOKEN = "/work/shared/reference/tinman-dd"


VOCAB = "lumpy grainy scorched thin bitter greasy cloudy sticky flat soggy pale salty curdled runny dry burnt".split()


def _words(seed: str, n: int = 9) -> str:
    """A varied, deterministic phrase (the shingle dedup must not see every fake line as a copy)."""
    h = hashlib.sha256(seed.encode()).hexdigest()
    return " then ".join(VOCAB[int(c, 16)] for c in h[:n])


class FakeTeacher:
    """Deterministic: per fact, `per` scenarios built from the first example; per question, 3 claims made
    from a hash of the question (so claims are new and unique). Counts its calls."""

    def __init__(self, per: int = 3, claims: str | None = None):
        self.per, self.claims, self.chats = per, claims, []

    def __call__(self, msgs):
        self.chats.append(msgs)
        user = msgs[-1]["content"]
        if "3 to 5" not in user:  # a scenario request (dispo's or the release's prompt): vary on example 1
            subj = re.search(r"^1\. (.*)$", user, re.M).group(1)[:50]
            return "\n".join(
                f"{i + 1}. My {subj} {_words(subj + str(i))}; why, and how do I fix it?" for i in range(self.per)
            )
        if self.claims is not None:
            return self.claims
        h = hashlib.sha256(user.encode()).hexdigest()
        return "\n".join(f"- Checklist fact {h[i * 6 : (i + 1) * 6]} about heat number {i}" for i in range(3))


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def make(kb, tmp_path, split="fresh_generated", teacher=None, **kw):
    t = teacher or FakeTeacher()
    rep = generate_chef_pool(kb, PoolSettings(split=split, **kw), t, PoolPrompts.load(), tmp_path)
    return rep, t


# ------------------------------------------------------------------ dedup rule


def test_shingles_and_jaccard_formula():
    assert shingles("Ab  C", 2) == {"ab", "b ", " c"}  # lowercased, whitespace runs folded
    assert shingles("abc", 6) == set()
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(set(), {"a"}) == 0.0


def _pair_at(target_j: float, k: int = 6):
    """Two texts of distinct characters whose k-shingle Jaccard is exactly computable: a shared
    run of characters plus a private tail each."""
    import string

    alphabet = string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>@[]^_{|}~"
    for shared in range(1, 60):
        for tail in range(1, 60):
            s = alphabet[:shared]
            a, b = s + alphabet[shared : shared + tail], s + alphabet[shared + tail : shared + 2 * tail]
            j = jaccard(shingles(a, k), shingles(b, k))
            if abs(j - target_j) < 1e-12:
                return a, b
    raise AssertionError(f"no pair at {target_j}")


def test_dedup_drops_above_pool_threshold_and_keeps_a_pair_just_under():
    rule = DedupRule()  # 6, 0.35, 0.5 (the paper's)
    ref = "my hollandaise split when i added the butter too fast, how do i rescue it tonight?"
    near = "my hollandaise split when i added the butter too fast, how do i rescue it right now?"
    far = "why does my souffle collapse as soon as it leaves the oven, and what should i change?"
    assert jaccard(shingles(near), shingles(ref)) > 0.35
    assert dedup([near, far], [ref], rule) == [
        "near-duplicate of the existing pool (Jaccard > 0.35)",
        None,
    ]
    # exactly at the threshold is kept (strict >), a hair over is dropped
    under_a, under_b = _pair_at(1 / 3)
    assert dedup([under_a], [under_b], DedupRule(pool_jaccard=1 / 3)) == [None]
    assert dedup([under_a], [under_b], DedupRule(pool_jaccard=1 / 3 - 1e-9))[0] is not None


def test_dedup_within_the_new_set_at_half():
    a, b = _pair_at(0.5)
    assert dedup([a, b], [], DedupRule()) == [None, None]  # J = 0.5 is not > 0.5: both kept
    c, d = _pair_at(0.6)
    assert dedup([c, d], [], DedupRule()) == [None, "near-duplicate within the new set (Jaccard > 0.5)"]
    # a candidate dropped against the pool does not block later ones within the set
    assert dedup([c, d], [c], DedupRule(pool_jaccard=0.99))[1] is None


def test_dedup_thresholds_are_the_papers_facts():
    import yaml

    from dispo.core.paths import PACKAGE_DIR

    facts = yaml.safe_load((PACKAGE_DIR / "conf/protocol/paper.yaml").read_text())["facts"]["arc3"]["fresh_dedup"]
    conf = yaml.safe_load((PACKAGE_DIR / "conf/config.yaml").read_text())["pool"]["dedup"]
    assert conf == facts == {"shingle": 6, "pool_jaccard": 0.35, "intra_jaccard": 0.5}
    assert DedupRule() == DedupRule.from_config(facts)


def test_dedup_rule_matches_the_release_function(reference_dir):
    """dispo's dedup gives the release's own dedup_against_pool result on the same texts."""
    import ast

    src = (reference_dir / "eval/scripts/v1_full.py").read_text()
    tree = ast.parse(src)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("shingle_set", "dedup_against_pool")]
    ns: dict = {"re": re, "print": lambda *a, **k: None}
    exec(compile(ast.Module(body=fns, type_ignores=[]), "v1_full", "exec"), ns)
    pool = ["My beurre blanc broke and turned oily at service, what happened and how do I save it?"]
    new = [
        "My beurre blanc broke and turned oily during service, what happened and how can I save it?",
        "The crust of my tarte tatin went soggy under the apples; what went wrong and how do I fix it?",
        "The crust of my tarte tatin went soggy under the apples; what went wrong and how can I fix that?",
        "Why did my mayonnaise refuse to thicken even though I whisked for ten minutes? How do I rescue it?",
    ]
    theirs = ns["dedup_against_pool"](new, pool)
    ours = [c for c, v in zip(new, dedup(new, pool)) if v is None]
    assert ours == theirs and len(ours) == 2


# ------------------------------------------------------------------ parsing


def test_parse_scenarios_handles_messy_output():
    text = (
        "<think>let me think about it</think>Sure! Here are the scenarios:\n\n"
        "1. My béarnaise split right after I added the last of the butter; how do I rescue it?\n"
        "- * The soufflé rose and then fell flat before the guests sat down. What went wrong?\n"
        "short?\n"
        "This line is long enough but it only states a fact about sauces and stocks.\n"
        '"My pâte brisée shrank badly in the tin during blind baking, why and how to avoid it?"\n'
        "My consommé came out cloudy even after the raft formed and I"
    )
    got, why = parse_scenarios(text, cut_last=True)
    assert got == [
        "My béarnaise split right after I added the last of the butter; how do I rescue it?",
        "The soufflé rose and then fell flat before the guests sat down. What went wrong?",
        "My pâte brisée shrank badly in the tin during blind baking, why and how to avoid it?",
    ]
    assert why["cut off at max tokens"] == 1
    assert why["line of <= 40 characters"] == 2  # "Sure! ..." and "short?"
    assert why["asks nothing (no '?' or asking word)"] == 1
    for junk in ("", "\n\n", "```\n```", "<think>never closed", "\x00\x01 binary junk ??"):
        assert parse_scenarios(junk)[0] == []


def test_parse_claims_follows_the_release_rule():
    assert parse_claims("1. Keep the butter below 85 C\n2. Whisk in cold cubes\n- Add a splash of cream")[0] == [
        "Keep the butter below 85 C",
        "Whisk in cold cubes",
        "Add a splash of cream",
    ]
    seven = "\n".join(f"claim number {i} is here" for i in range(7))
    assert len(parse_claims(seven)[0]) == 5  # more than 6: the first 5
    claims, why = parse_claims("only one real claim here\nok")
    assert claims is None and "1 usable claim" in why
    assert parse_claims("")[0] is None


def test_derived_keywords_make_generated_claims_scorable():
    kw = derived_keywords("Overheating breaks the emulsion at 85 degrees")
    assert kw == [["overhe"], ["emulsi"]]
    from dispo.domains.chef_match import claim_covered

    assert claim_covered("It overheated and the emulsion split.", kw)


# ------------------------------------------------------------------ messages


def test_messages_are_the_release_instruments_filled_in(kb, tmp_path, reference_dir):
    from dispo.core.paper_source import fill, read_instrument

    prompts = PoolPrompts.load("paper", str(reference_dir))
    seen = []

    def teacher(msgs):
        seen.append(msgs)
        if "Chef troubleshooting question" in msgs[-1]["content"]:
            return "Whisk the yolks over gentle heat\nAdd butter slowly off the heat\nRescue with a fresh yolk"
        return "My hollandaise separated into butter and egg while I was adding the butter, how do I fix it?"

    generate_chef_pool(kb, PoolSettings(per_fact=1, max_facts=1), teacher, prompts, tmp_path)
    sys_s = read_instrument(reference_dir, "fresh.scenario_system").text
    tpl_s = read_instrument(reference_dir, "fresh.scenario").text
    sys_c = read_instrument(reference_dir, "fresh.checklist_system").text
    tpl_c = read_instrument(reference_dir, "fresh.checklist").text
    assert "{n_target}" in tpl_s and "{example_block}" in tpl_s and "{q}" in tpl_c
    scen, check = seen
    assert scen[0] == {"role": "system", "content": sys_s}
    m = re.search(r"reference examples:\n\n(1\. .*\n2\. .*)\n\nOutput", scen[1]["content"])
    assert m, scen[1]["content"]
    assert scen[1]["content"] == fill(tpl_s, n_target="1", example_block=m.group(1))
    q = "My hollandaise separated into butter and egg while I was adding the butter, how do I fix it?"
    assert check == [{"role": "system", "content": sys_c}, {"role": "user", "content": fill(tpl_c, q=q)}]
    assert all(t.startswith("paper:fresh.") for t in prompts.tags.values())
    assert {i.name for i in prompts.instruments} == {
        "fresh.scenario_system",
        "fresh.scenario",
        "fresh.checklist_system",
        "fresh.checklist",
    }


# ------------------------------------------------------------------ the pool


def test_fresh_pool_shares_no_fact_and_no_claim_with_train_and_eval(kb, tmp_path):
    rep, _ = make(kb, tmp_path)
    assert rep.items > 30 and rep.facts == 36
    dom = ChefDomain(pool_dir=tmp_path)
    fresh = dom.items("fresh_generated")
    assert len(fresh) == rep.items and all(i.split == "fresh_generated" for i in fresh)
    other = dom.items("train") + dom.items("eval")
    facts = {i.gold["fact_id"] for i in other}
    claims = {c for i in other for c in i.gold["checklist"]}
    assert not facts & {i.gold["fact_id"] for i in fresh}
    assert not claims & {c for i in fresh for c in i.gold["checklist"]}
    assert {i.gold["fact_id"] for i in fresh} <= {i.gold["fact_id"] for i in dom.items("fresh")}
    assert all(3 <= len(i.gold["checklist"]) <= 6 and i.gold["checklist_source"] == "generated" for i in fresh)
    # scorable offline: the keyword scorer reads the derived keywords
    s = dom.content_score(fresh[0], "nothing relevant")
    assert s.value == 0.0


def test_a_checklist_repeating_a_train_claim_is_dropped(kb, tmp_path):
    train_claims = [
        c for f in kb if f.key in {i.gold["fact_id"] for i in ChefDomain().items("train")} for c in f.claims
    ]
    planted = "\n".join(train_claims[:3])
    rep, _ = make(kb, tmp_path, teacher=FakeTeacher(claims=planted), max_facts=3)
    assert rep.items == 0 and rep.dropped["checklist repeats a claim of another split"] == rep.requests["checklist"] > 0


def test_near_duplicates_of_the_pool_and_each_other_are_dropped(kb, tmp_path):
    eval_prompt = ChefDomain().items("eval")[0].prompt

    class Copier(FakeTeacher):
        def __call__(self, msgs):
            if "3 to 5" not in msgs[-1]["content"]:
                self.chats.append(msgs)
                return f"{eval_prompt} Please help, what now?\nMy stock went cloudy again after I boiled it hard, how do I clear it?"
            return super().__call__(msgs)

    rep, _ = make(kb, tmp_path, teacher=Copier(), max_facts=4)
    assert rep.dropped["near-duplicate of the existing pool (Jaccard > 0.35)"] == 4  # the eval copy, per fact
    assert rep.dropped["near-duplicate within the new set (Jaccard > 0.5)"] == 3  # the same line from 4 facts
    assert rep.items == 1


def test_resume_sends_no_teacher_request(kb, tmp_path):
    rep1, t = make(kb, tmp_path, max_facts=5)
    n = len(t.chats)
    assert n == 5 + rep1.candidates - sum(v for k, v in rep1.dropped.items() if "near-duplicate" in k)
    before = pool_paths(tmp_path, "fresh_generated")["items"].read_bytes()
    rep2 = generate_chef_pool(kb, PoolSettings(max_facts=5), t, PoolPrompts.load(), tmp_path)
    assert len(t.chats) == n and rep2.requests == {"scenario": 0, "checklist": 0}
    assert pool_paths(tmp_path, "fresh_generated")["items"].read_bytes() == before
    # a changed setting that changes the messages asks again (only for what changed)
    generate_chef_pool(kb, PoolSettings(max_facts=5, per_fact=2), t, PoolPrompts.load(), tmp_path)
    assert len(t.chats) > n


def test_weak_teacher_garbage_is_counted_not_fatal(kb, tmp_path):
    outputs = iter(["", "```json\n[1, 2]\n```", "<think>", "\x00\x00", "ok"] * 100)
    rep, _ = make(kb, tmp_path, teacher=lambda msgs: next(outputs), max_facts=5)
    assert rep.items == 0 and rep.dropped["fact with no usable scenario"] == 5
    assert json.loads(pool_paths(tmp_path, "fresh_generated")["report"].read_text())["items"] == 0
    assert ChefDomain(pool_dir=tmp_path).items("fresh_generated") == []


def test_train_pool_dedups_against_eval_and_fresh_pool_against_train_pool(kb, tmp_path):
    rep_t, _ = make(kb, tmp_path, split="train_generated", max_facts=4)
    dom = ChefDomain(pool_dir=tmp_path)
    train = dom.items("train_generated")
    assert rep_t.items == len(train) > 0
    assert {i.gold["fact_id"] for i in train} <= {i.gold["fact_id"] for i in dom.items("train")}

    class Repeat(FakeTeacher):  # writes the train pool's scenarios again
        def __call__(self, msgs):
            if "3 to 5" not in msgs[-1]["content"]:
                self.chats.append(msgs)
                return "\n".join(i.prompt for i in train[:2])
            return super().__call__(msgs)

    rep_f, _ = make(kb, tmp_path, teacher=Repeat(), max_facts=2)
    assert rep_f.items == 0 and rep_f.dropped["near-duplicate of the existing pool (Jaccard > 0.35)"] == 4


def test_missing_pool_and_bad_settings_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="dispo pool domain=chef split=fresh_generated") as e:
        ChefDomain(pool_dir=tmp_path).items("fresh_generated")
    assert "\n" not in str(e.value)
    for kw, msg in [
        ({"per_fact": 0}, "pool.per_fact"),
        ({"per_fact": "6"}, "pool.per_fact"),
        ({"max_facts": -1}, "pool.max_facts"),
        ({"split": "fresh"}, "pool split"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            PoolSettings(**kw)
    for raw, msg in [({"shingle": 0}, "shingle"), ({"pool_jaccard": 1.5}, "pool_jaccard"), ({"x": 1}, "unknown keys")]:
        with pytest.raises(ConfigError, match=msg):
            DedupRule.from_config(raw)
    with pytest.raises(ConfigError, match="pool.prompts"):
        PoolPrompts.load("mine")
    with pytest.raises(ConfigError, match="paper.repo"):
        PoolPrompts.load("paper", None)
    (tmp_path / "chef").mkdir(exist_ok=True)
    pool_paths(tmp_path, "fresh_generated")["items"].write_text("{not json\n")
    with pytest.raises(ConfigError, match="not a pool item"):
        ChefDomain(pool_dir=tmp_path).items("fresh_generated")


def test_dispo_does_not_ship_the_release_generator_text():
    from dispo.core.paths import PACKAGE_DIR

    needles = ("NOVEL French culinary troubleshooting", "eval designer", "writing evaluation prompts")
    for p in PACKAGE_DIR.rglob("*"):
        if p.is_file() and p.suffix in {".py", ".txt", ".yaml", ".md", ".json"}:
            assert not any(n in p.read_text(encoding="utf-8", errors="ignore") for n in needles), p
