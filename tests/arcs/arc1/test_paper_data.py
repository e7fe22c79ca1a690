"""construction=paper: arc 1's data types 2-4 as the release built them. The release's prompts
and numbers are read from the release files here (independently of dispo's reader), so a wrong
fill, temperature, token budget or filter rule fails a test."""

from __future__ import annotations

import ast
import hashlib
import json

import pytest

from dispo.arcs.arc1.teachers import Teacher
from dispo.core.errors import ConfigError
from dispo.core.types import Item, Score
from tests.helpers.release import PAPER_REPO

REPO = PAPER_REPO
pytestmark = pytest.mark.skipif(not REPO.is_dir(), reason="the paper's release checkout is not here")


def constants(path: str) -> dict:
    """Module-level literals of a release script (read, never run)."""
    out = {}
    for node in ast.parse((REPO / path).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


S11 = "scripts/step11b_failure_traces.py"
S12 = "scripts/step12_counterexamples.py"
S13 = "scripts/step13_boundary_cases.py"
C3 = "scripts/clean_type3.py"


def paper_cfg(*extra: str) -> dict:
    from dispo.core.config import compose_config

    return compose_config(["protocol=paper", "domain=chef", f"paper.repo={REPO}", *extra], base={"arc": "arc1"})


# ------------------------------------------------------------------ a planted world

WORDS = ["butter", "heat", "whisk", "cold", "emulsion", "lemon"]  # coverage = share of these present


def score_fn(items, outputs):
    return [Score("planted.coverage", "v1", sum(w in o.lower() for w in WORDS) / len(WORDS)) for o in outputs]


GOLD_TEXT = (
    "Take it off the heat, whisk in cold butter, rebuild the emulsion, finish with lemon. " * 5
)  # 1.0, 430 chars
ITEMS = [Item(id=f"q{i}", prompt=f"My hollandaise number {i} split. Why?", domain="chef") for i in range(6)]
STUDENT = {
    # q0: a failure whose rewrite is better -> kept
    "q0": "It is fine. " * 20,
    # q1: a failure whose rewrite is no better -> dropped (no signal)
    "q1": "No idea at all, sorry. " * 10,
    # q2: a failure whose rewrite scores above the student but under 0.20 -> dropped (still bad)
    "q2": "Stir it. " * 30,
    # q3: a right answer as long as the gold: not a failure, no trace
    "q3": GOLD_TEXT,
    # q4: a failure whose better rewrite is much shorter than the student's answer -> kept, flagged
    "q4": "Blah blah blah, this is a long and useless answer about sauces. " * 8,
    "q5": "Hmm. " * 40,
}
REWRITE = {
    "q0": "Off the heat, whisk in cold butter. " * 6,  # 4/6, 216 chars >= 0.7 x 240
    "q1": "Still no idea. " * 10,  # 0/6 <= student 0/6
    "q2": "Add lemon and stir. " * 10,  # 1/6 = 0.167 < 0.20
    "q4": "Use heat and butter.",  # 2/6, 20 chars < 0.7 x 520
    "q5": "Whisk in cold butter, off the heat, add lemon to the emulsion.",  # 6/6
}
LONG_WRONG = "With confidence: start the velouté at 120°C in a cast pot, as Carême did in Lyon. " * 3  # 0/6
FABRICATED = {
    "q0": LONG_WRONG,  # not inverted (0 < 1): kept as is, chosen = gold
    "q1": "Too short.",  # < 100 chars -> dropped (step12)
    "q2": "x" * 120,  # >= 100 chars but < 0.3 x gold (129) -> dropped (step12)
    "q3": "y" * int(len(GOLD_TEXT) * 0.45),  # >= 0.3 x but < 0.5 x gold -> clean_type3
    "q4": GOLD_TEXT + " Serve it at 300°C.",  # scores as the gold (6/6 >= 6/6): inverted -> judge says B
    "q5": GOLD_TEXT + " Always at 250°C.",  # inverted -> judge says TIE
}
VERDICT = {"q4": "B\nthe second is right", "q5": "TIE\ncannot tell"}


class Fake(Teacher):
    """Deterministic, records every chat it receives."""

    def __init__(self, role: str, cfg: dict):
        self.role, self.cfg, self.calls = role, cfg, []

    def _answer(self, chat) -> str:
        text = chat[-1]["content"]
        qid = next((i.id for i in ITEMS if i.prompt in text), None)
        if self.role == "critic":
            return f"<think>hmm</think>1. Missing the butter ({qid})."
        if self.role == "rewriter":
            return REWRITE[qid]
        if self.role == "fabricator":
            return FABRICATED[qid]
        if self.role == "pair_judge":
            return VERDICT.get(qid, "A\nthe first")
        if self.role == "boundary_writer":
            if "Disputed Origins" in text:  # fenced JSON, one of them a held-out prompt
                return '```json\n["Who really invented the croissant, Vienna or Paris?", "My hollandaise number 5 split. Why?"]\n```'
            if "Medical Dietary" in text:  # not JSON: the release's line-by-line fallback
                return "Here you go:\n- Is raw-milk brie safe for my toddler to eat?\n- short?\nno question here at all"
            return "[]"
        if self.role == "boundary_answerer":
            return "I can't say for certain; ask a doctor or a historian. Here is what I do know..."
        return f"{self.role} answer"

    def generate(self, chats, ids):
        self.calls.append(chats)
        return [{"output": self._answer(c), "finish_reason": "stop"} for c in chats]

    def describe(self):
        return {"backend": "fake", "model": self.cfg.get("model"), "decoding": self.cfg.get("decoding")}


class Factory:
    def __init__(self):
        self.made: dict[str, Fake] = {}
        self.cfgs: dict[str, dict] = {}

    def __call__(self, role, scfg, default_dec):
        self.cfgs[role] = scfg
        self.made[role] = Fake(role, scfg)
        return self.made[role]

    def n_calls(self) -> int:
        return sum(len(c) for t in self.made.values() for chats in t.calls for c in [chats])


def build(tmp_path, factory, types=("failure_trace", "counterexample", "boundary"), **kw):
    from dispo.arcs.arc1.paper_data import PaperRules, build_paper_types, make_teachers, role_configs

    cfg = paper_cfg(*kw.pop("overrides", ()))
    roles = role_configs(cfg["arc"], types, require_endpoint=False)
    student = {i: {"output": t, "score": score_fn([None], [t])[0].to_json()} for i, t in STUDENT.items()}
    return build_paper_types(
        ITEMS,
        student,
        {it.id: GOLD_TEXT for it in ITEMS},
        score_fn,
        repo=REPO,
        teachers=make_teachers(roles, teacher_factory=factory),
        rules=PaperRules.from_config(cfg["arc"]["data"]["paper"]),
        types=types,
        cache_dir=tmp_path / "cache",
        exclude_prompts=[it.prompt for it in ITEMS],
        **kw,
    )


# ------------------------------------------------------------------ config


def test_protocol_paper_sets_the_release_teachers_and_numbers_for_chef_only():
    cfg = paper_cfg()
    dt, dc = cfg["arc"]["data_teachers"], cfg["arc"]["data"]
    assert dc["construction"] == "paper" and cfg["arc"]["teacher_passes"]["correct"] is False
    s11, s12, s13, c3 = constants(S11), constants(S12), constants(S13), constants(C3)
    assert (dt["critic"]["model"], dt["critic"]["temperature"]) == (s11["DEEPSEEK_MODEL"], s11["DEEPSEEK_TEMPERATURE"])
    assert dt["critic"]["extra"] == {"provider": s11["DEEPSEEK_PROVIDER"]}
    assert s11["QWEN_MODEL"].split(":")[0] == dt["rewriter"]["model"]  # ":free" routing suffix dropped
    assert dt["rewriter"]["temperature"] == s11["QWEN_TEMPERATURE"]
    assert (dt["fabricator"]["model"], dt["fabricator"]["temperature"]) == (
        s12["MINIMAX_MODEL"],
        s12["MINIMAX_TEMPERATURE"],
    )
    assert dt["pair_judge"]["model"] == c3["JUDGE_MODEL"]
    assert (dt["boundary_writer"]["model"], dt["boundary_writer"]["temperature"]) == (
        s13["DEEPSEEK_MODEL"],
        s13["DEEPSEEK_TEMPERATURE"],
    )
    a = dt["boundary_answerer"]
    assert (a["model"], a["temperature"], a["base_url"], a["extra"]) == (
        s13["KIMI_MODEL"],
        s13["KIMI_TEMPERATURE"],
        s13["KIMI_BASE_URL"],
        s13["KIMI_EXTRA_BODY"],
    )
    p = dc["paper"]
    assert (p["failure_score_gap"], p["failure_low_score"], p["failure_length_ratio"]) == (
        s11["SCORE_GAP_THRESHOLD"],
        s11["ABSOLUTE_LOW_THRESHOLD"],
        s11["LENGTH_RATIO_THRESHOLD"],
    )
    counts = {k: v["count"] for k, v in s13["BOUNDARY_CATEGORIES"].items()}
    facts = cfg["protocol"]["facts"]["chef_arc1"]["data_types"]
    assert facts["boundary"]["per_category"] == counts and sum(counts.values()) == 120
    # the release's literal numbers in its code (not module constants)
    src2, src3 = (REPO / "scripts/clean_type2.py").read_text(), (REPO / C3).read_text()
    assert f"c < {p['trace_still_bad_below']:.2f}" in src2 and f"* {p['trace_shrunk_ratio']}" in src2
    assert f"< {p['counter_min_chosen_ratio']}" in src3 and "max_tokens=200" in src3
    src12 = (REPO / S12).read_text()
    assert f"len(wrong_response) < {p['counter_min_chars']}" in src12
    assert f"len(gold_response) * {p['counter_min_gold_ratio']}" in src12
    # dispo's own construction stays the default, and protocol=paper leaves the code arc alone
    from dispo.core.config import compose_config

    assert compose_config(["domain=chef"], base={"arc": "arc1"})["arc"]["data"]["construction"] == "default"
    assert paper_cfg("domain=code")["arc"]["data"]["construction"] == "default"
    assert paper_cfg("arc.data.construction=default")["arc"]["data"]["construction"] == "default"


def test_a_missing_endpoint_is_one_line_naming_the_key(tmp_path):
    from dispo.arcs import ARCS
    from dispo.arcs.arc1.paper_data import role_configs
    from dispo.core.runs import Run

    cfg = paper_cfg(f"output_dir={tmp_path}")
    with pytest.raises(ConfigError, match=r"arc\.data_teachers\.base_url") as e:
        role_configs(cfg["arc"], ["failure_trace"])
    assert "\n" not in str(e.value) and "arc.data_teachers.critic" in str(e.value)
    # the recipe refuses before any model runs
    run = Run.create("train-arc1", cfg, "smollm2-135m", root=tmp_path)
    rec = ARCS.get("arc1")(cfg, run, domain=object(), judge=object())
    with pytest.raises(ConfigError, match="needs an OpenAI-compatible endpoint"):
        rec.setup()
    # a shared endpoint satisfies the OpenRouter roles; the answerer keeps Moonshot's
    roles = role_configs(paper_cfg("arc.data_teachers.base_url=http://h:1/v1")["arc"], ["boundary", "counterexample"])
    assert roles["fabricator"].base_url == "http://h:1/v1"
    assert roles["boundary_answerer"].base_url == constants(S13)["KIMI_BASE_URL"]
    with pytest.raises(ConfigError, match="arc.data.paper.failure_score_gap is not set"):
        from dispo.arcs.arc1.paper_data import PaperRules

        PaperRules.from_config({})


# ------------------------------------------------------------------ what the teachers are sent


def test_each_role_gets_the_release_prompt_filled_in_and_its_settings(tmp_path):
    fac = Factory()
    res = build(tmp_path, fac)
    s11, s12, s13, c3 = constants(S11), constants(S12), constants(S13), constants(C3)
    # temperatures and token budgets as the scripts passed them
    dec = {r: fac.cfgs[r]["decoding"] for r in fac.cfgs}
    assert dec["critic"] == {"temperature": s11["DEEPSEEK_TEMPERATURE"], "max_new_tokens": 2048}
    assert dec["rewriter"] == {"temperature": s11["QWEN_TEMPERATURE"], "max_new_tokens": 4096}
    assert dec["fabricator"] == {"temperature": s12["MINIMAX_TEMPERATURE"], "max_new_tokens": 4096}
    assert dec["pair_judge"] == {"temperature": 0.0, "max_new_tokens": 200}
    assert dec["boundary_writer"] == {"temperature": s13["DEEPSEEK_TEMPERATURE"], "max_new_tokens": 4096}
    assert dec["boundary_answerer"] == {"temperature": s13["KIMI_TEMPERATURE"], "max_new_tokens": 2048}
    for src in (S11, S12, S13):  # the budgets are literal in the calls
        assert "max_tokens=4096" in (REPO / src).read_text()
    assert "max_tokens=2048" in (REPO / S11).read_text() and "max_tokens=2048" in (REPO / S13).read_text()

    def sent(role):
        return [chat for chats in fac.made[role].calls for chat in chats]

    # type 2: the critique of q0 is the release's CRITIQUE_PROMPT as str.format filled it, one user turn
    crit = {c[0]["content"].split("STUDENT'S RESPONSE")[0]: c for c in sent("critic")}
    q0 = next(c for k, c in crit.items() if ITEMS[0].prompt in k)
    want = s11["CRITIQUE_PROMPT"].format(
        prompt=ITEMS[0].prompt,
        student_response=STUDENT["q0"],
        gold_response=GOLD_TEXT,
        verification_issues="- score_gap=1.00 (student=0.00, gold=1.00)\n- low_score=0.00",
    )
    assert q0 == [{"role": "user", "content": want}]
    # the rewrite sees the critique with its think block stripped (step11b:186)
    rw = next(c for c in sent("rewriter") if ITEMS[0].prompt in c[0]["content"])
    assert rw == [
        {
            "role": "user",
            "content": s11["CORRECTION_PROMPT"].format(
                prompt=ITEMS[0].prompt, student_response=STUDENT["q0"], critique="1. Missing the butter (q0)."
            ),
        }
    ]
    # q3 (right, as long as the gold) is not a failure: never critiqued
    assert len(sent("critic")) == 5 and not any(ITEMS[3].prompt in c[0]["content"] for c in sent("critic"))
    # type 3
    fab = next(c for c in sent("fabricator") if ITEMS[1].prompt in c[0]["content"])
    assert fab == [
        {
            "role": "user",
            "content": s12["WRONG_RESPONSE_PROMPT"].format(prompt=ITEMS[1].prompt, gold_response=GOLD_TEXT),
        }
    ]
    judge = next(c for c in sent("pair_judge") if ITEMS[5].prompt in c[0]["content"])
    assert judge[0]["content"] == c3["PROMPT"].format(q=ITEMS[5].prompt, a=GOLD_TEXT, b=FABRICATED["q5"])
    # type 4: one request per category, in the release's order and wording
    cats = s13["BOUNDARY_CATEGORIES"]
    writer = sent("boundary_writer")
    assert len(writer) == len(cats) == 6
    for (name, c), chat in zip(cats.items(), writer):
        assert chat == [
            {
                "role": "user",
                "content": s13["GENERATE_PROMPTS_SYSTEM"].format(
                    category=name.replace("_", " ").title(),
                    description=c["description"],
                    seeds="\n".join(f"- {s}" for s in c["seed_prompts"]),
                    count=c["count"],
                ),
            }
        ]
    ans = next(c for c in sent("boundary_answerer") if "croissant, Vienna" in c[0]["content"])
    assert ans[0]["content"] == s13["DEFERRAL_RESPONSE_PROMPT"].format(
        prompt="Who really invented the croissant, Vienna or Paris?", category="Disputed Origins"
    )
    assert {i.name for i in res.instruments} >= {
        "data.failure_critique",
        "data.failure_correction",
        "data.counterexample",
        "data.pair_judge",
        "data.boundary_prompts",
        "data.boundary_answer",
        "data.boundary_categories",
    }


def test_the_filters_drop_what_the_release_drops(tmp_path):
    res = build(tmp_path, Factory())
    why = {(d["id"], d["slot"]): d["reason"] for d in res.dropped}
    traces = {e["id"]: e for e in res.sft if e["type"] == "failure_trace"}
    # clean_type2.py
    assert set(traces) == {"q0", "q4", "q5"}
    assert why[("q1", "failure_trace")].startswith("no signal")
    assert why[("q2", "failure_trace")].startswith("still bad")
    assert traces["q4"]["flags"] == ["shrunk"] and traces["q0"]["flags"] == []
    assert traces["q0"]["messages"] == [
        {"role": "user", "content": ITEMS[0].prompt},
        {"role": "assistant", "content": REWRITE["q0"].strip()},  # the release strips replies (step11b:186)
    ]  # single turn: question -> corrected answer (train_sft.py:32-34)
    assert res.report["failure_trace"]["failures"] == 5
    # step12 quality check and clean_type3.py
    pairs = {p["id"]: p for p in res.pairs}
    assert why[("q1", "counterexample")].startswith("too short")
    assert why[("q2", "counterexample")].startswith("much shorter than gold")
    assert why[("q3", "counterexample")].startswith("length (rejected < 0.5")
    assert why[("q5", "counterexample")] == "judge: tie"
    assert set(pairs) == {"q0", "q4"}
    assert pairs["q0"]["chosen"] == GOLD_TEXT and pairs["q0"]["rejected"] == FABRICATED["q0"].strip()
    assert pairs["q0"]["swapped"] is False and pairs["q0"]["messages"] == [{"role": "user", "content": ITEMS[0].prompt}]
    # the judge said the fabricated one (B) is right: swapped as clean_type3.py:78-82 did
    assert pairs["q4"]["swapped"] is True and pairs["q4"]["chosen"] == FABRICATED["q4"].strip()
    assert res.report["counterexample"]["judge"] == {"B": 1, "TIE": 1}


def test_boundary_prompts_are_new_items_never_eval_prompts(tmp_path):
    res = build(tmp_path, Factory())
    cats = constants(S13)["BOUNDARY_CATEGORIES"]
    b = [e for e in res.sft if e["type"] == "boundary"]
    gen = [e for e in b if e["origin"] == "generated"]
    assert [e["prompt"] for e in gen] == [
        "Who really invented the croissant, Vienna or Paris?",
        "Is raw-milk brie safe for my toddler to eat?",
    ]
    assert sum(e["origin"] == "seed" for e in b) == sum(len(c["seed_prompts"]) for c in cats.values())
    assert gen[0]["id"] == "boundary/disputed_origins/005" and gen[0]["category"] == "disputed_origins"
    eval_prompts = {it.prompt for it in ITEMS}
    assert not {e["prompt"] for e in b} & eval_prompts and not {e["id"] for e in b} & {it.id for it in ITEMS}
    assert any(d["reason"] == "duplicates an existing prompt" for d in res.dropped)
    assert all(e["messages"][0] == {"role": "user", "content": e["prompt"]} for e in b)
    # a capped run asks for fewer and keeps at most that many
    fac = Factory()
    res2 = build(tmp_path / "cap", fac, types=("boundary",), overrides=("arc.data.paper.boundary_per_category=1",))
    assert all("Generate 1 MORE" in c[0]["content"] for c in fac.made["boundary_writer"].calls[0])
    assert [e["prompt"] for e in res2.sft if e["origin"] == "generated"] == [e["prompt"] for e in gen]


def test_a_resumed_build_regenerates_nothing(tmp_path):
    first = build(tmp_path, Factory())
    fac = Factory()
    again = build(tmp_path, fac)
    assert fac.n_calls() == 0
    assert again.sft == first.sft and again.pairs == first.pairs
    assert all(v["generated"] == 0 for v in again.report["calls"].values())
    # a changed setting is not served from the cache
    fac3 = Factory()
    build(tmp_path, fac3, types=("counterexample",), overrides=("arc.data_teachers.fabricator.temperature=0.3",))
    assert len(fac3.made["fabricator"].calls) == 1 and not fac3.made["pair_judge"].calls


def test_release_rules_as_pure_functions():
    from dispo.arcs.arc1.paper_data import (
        PaperRules,
        detect_failure,
        parse_boundary_prompts,
        parse_verdict,
        strip_think,
    )

    rules = PaperRules.from_config(paper_cfg()["arc"]["data"]["paper"])
    assert detect_failure(0.5, 0.6, 100, 100, rules) == []
    assert detect_failure(0.5, 0.65, 100, 100, rules)[0].startswith("score_gap=0.15")
    assert detect_failure(0.34, 0.34, 100, 100, rules) == ["low_score=0.34"]
    assert detect_failure(0.9, 0.9, 29, 201, rules)[0].startswith("length_ratio=0.14")
    assert detect_failure(0.9, 0.9, 29, 200, rules) == []  # gold of 200 chars: length not checked
    assert [parse_verdict(t) for t in ("a\nwhy", " B", "tie", "Both", "")] == ["A", "B", "TIE", "B", "TIE"]
    assert parse_boundary_prompts('["one?", 2]') == ["one?", "2"]
    assert parse_boundary_prompts('{"q": 1}') == []  # not a list, and no line with a question
    assert strip_think("<think>x</think>", keep_if_empty=True) == "<think>x</think>"
    assert strip_think("<think>x</think>", keep_if_empty=False) == ""


# ------------------------------------------------------------------ arc 1 end to end


def test_arc1_under_protocol_paper_builds_the_paper_data_and_records_the_instruments(tmp_path):
    from dispo.arcs import ARCS
    from dispo.core.runs import Run
    from dispo.domains.chef import ChefDomain
    from dispo.judges import get_judge
    from tests.helpers.arcs import tiny_arc1_config

    cfg = tiny_arc1_config(
        tmp_path,
        "tiny-llama",
        "protocol=paper",
        "domain=chef",
        f"paper.repo={REPO}",
        "arc.data.paper.boundary_per_category=1",
        # the KB's train facts, not a teacher-written pool (protocol=paper's default for chef,
        # tested in tests/arcs/arc1/test_prompt_pool.py): this test is about the data types
        "arc.train_pool=domain",
    )
    assert cfg["arc"]["data"]["construction"] == "paper"

    class Everyone(Factory):
        def __call__(self, role, scfg, default_dec):
            t = super().__call__(role, scfg, default_dec)
            if role in ("eager", "deliberate", "adversarial", "synthesizer"):
                t._answer = lambda chat: "Whisk in cold butter off the heat; " * 8  # long enough to be a gold
            elif role in ("critic", "rewriter", "fabricator"):
                t._answer = lambda chat, r=role: f"{r}: " + "an authoritative and confident answer. " * 6
            return t

    run = Run.create("train-arc1", cfg, "tiny-llama", root=tmp_path)
    fac = Everyone()
    rec = ARCS.get("arc1")(cfg, run, domain=ChefDomain(), judge=get_judge("lexical"), teacher_factory=fac)
    rec.setup()
    try:
        rec.run()
    finally:
        rec.cleanup()
    rep = run.read_json("data_report.json")
    assert rep["construction"] == "paper" and run.results["data"]["construction"] == "paper"
    assert rep["counts"]["boundary"] >= 30 and rep["pairs"].get("counterexample", 0) >= 1
    assert set(rep["paper"]["calls"]) == {
        "critic",
        "rewriter",
        "fabricator",
        "pair_judge",
        "boundary_writer",
        "boundary_answerer",
    }
    pairs = [json.loads(line) for line in (run.dir / "data" / "pairs.jsonl").read_text().splitlines()]
    assert all(p["rejected"].startswith("fabricator:") for p in pairs if not p["swapped"])
    ins = run.manifest["paper_instruments"]
    for name, path in (("data.counterexample", S12), ("data.boundary_answer", S13), ("data.boundary_categories", S13)):
        assert ins[name]["sha256"] == hashlib.sha256((REPO / path).read_bytes()).hexdigest()
    assert all(s.get("status") == "done" for s in run.manifest["stages"].values())
    # the data stage run again over the same run dir asks no teacher anything
    fac2 = Everyone()
    again = ARCS.get("arc1")(
        cfg, Run.open(run.dir), domain=ChefDomain(), judge=get_judge("lexical"), teacher_factory=fac2
    )
    again.setup()
    again.stage_data()
    assert fac2.n_calls() == 0
    assert run.read_json("data_report.json")["paper"]["calls"]["boundary_answerer"]["generated"] == 0
