"""The paper's own judges (dispo/judges/paper.py): the exact text sent is the release's text
filled in (with its response cuts), replies are parsed by the release's rules, coverage is the
share of YES over answered claims, the release files' sha256 reach manifest.json, and a changed
release text changes the version string and every cache key."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from dispo.core.errors import ConfigError
from dispo.core.paper_source import INSTRUMENTS, read_instrument
from dispo.judges import get_judge
from dispo.judges.base import AXES, JudgeRequest
from dispo.judges.chat import ChatError
from dispo.judges.paper import MAX_TOKENS, MODELS, NO_ENDPOINT, RESPONSE_CHARS, TASK_INSTRUMENTS, PaperJudge

ROOT = Path(__file__).resolve().parents[2]
GOOD_JSON = (
    '{"factual_accuracy":5,"hedging_appropriateness":4,"pedagogical_framing":3,"self_verification":2,"completeness":1}'
)


class FakeChat:
    """Records every (messages, max_tokens) it is sent; replies from `script(messages)`: a
    string, or an Exception instance to raise (ChatError = one failed call)."""

    def __init__(self, script):
        self.script = script
        self.sent: list[tuple[list[dict], int]] = []

    def __call__(self, messages, max_tokens):
        self.sent.append((messages, max_tokens))
        reply = self.script(messages) if callable(self.script) else self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def judge(repo, script, **kw):
    fake = FakeChat(script)
    return PaperJudge(paper_repo=str(repo), chat=fake, cache=False, **kw), fake


def text(repo, key):
    return read_instrument(repo, key).text


# --- MCAS 0-2 -------------------------------------------------------------------------------
def test_mcas_sends_the_release_prompt_filled_with_the_response_cut_at_2000(reference_dir):
    j, fake = judge(reference_dir, ["2"])
    response = "a" * 1990 + "TAIL-BEYOND-2000" + "b" * 500
    [s] = j.mcas([JudgeRequest(question="Sort a list {prompt}", response=response)])
    expected = (
        text(reference_dir, "mcas.phase0_judge")
        .replace("{prompt}", "Sort a list {prompt}")
        .replace("{response[:2000]}", response[:2000])
    )
    assert fake.sent == [([{"role": "user", "content": expected}], 5)]
    assert "TAIL-BEYOND-2000" not in fake.sent[0][0][0]["content"] and response[:2000] in expected
    assert s.ok and s.value == 2 and s.scorer == "paper.mcas" and s.version.startswith("mcas-paper-")


@pytest.mark.parametrize(
    "reply,value",
    [("2", 2), (" 0\n", 0), ("Score: 1", 1), ("1 - some awareness", 1), ("**2**", 2)],
)
def test_mcas_reads_the_first_0_1_2_digit(reference_dir, reply, value):
    j, _ = judge(reference_dir, [reply])
    assert j.mcas([JudgeRequest("q", "r")])[0].value == value


@pytest.mark.parametrize("reply", ["", "None of them", "5", "N/A"])
def test_mcas_unparseable_reply_is_unscored_never_zero(reference_dir, reply):
    j, _ = judge(reference_dir, [reply])
    [s] = j.mcas([JudgeRequest("q", "r")])
    assert s.status == "unscored" and s.value is None and "0/1/2" in s.reason


def test_failed_call_is_unscored_with_its_reason(reference_dir):
    j, _ = judge(reference_dir, [ChatError("HTTP 500 upstream")])
    [s] = j.mcas([JudgeRequest("q", "r")])
    assert s.status == "unscored" and "HTTP 500 upstream" in s.reason


# --- per-claim coverage ----------------------------------------------------------------------
def test_coverage_sends_one_release_call_per_claim_with_the_response_cut_at_2500(reference_dir):
    claims = ["Heat gently", "Whisk constantly", "Add butter off the heat"]
    replies = {"Heat gently": "YES", "Whisk constantly": "No.", "Add butter off the heat": "yes"}
    j, fake = judge(reference_dir, lambda m: next(v for k, v in replies.items() if f'"{k}"' in m[1]["content"]))
    response = "x" * 2490 + "BEYOND-2500" + "y" * 200
    [s] = j.coverage([JudgeRequest(question="My hollandaise split", response=response, claims=claims)])
    system, template = text(reference_dir, "judge.coverage_system"), text(reference_dir, "judge.coverage")
    assert [m for m, _ in fake.sent] == [
        [
            {"role": "system", "content": system},
            {"role": "user", "content": template.format(q="My hollandaise split", r=response[:2500], claim=c)},
        ]
        for c in claims
    ]
    assert all(n == 5 for _, n in fake.sent)
    assert all("BEYOND-2500" not in m[1]["content"] for m, _ in fake.sent)
    assert s.ok and s.value == pytest.approx(2 / 3)
    assert s.detail["claims"] == [True, False, True] and s.detail["answers"] == ["YES", "No.", "yes"]
    assert s.version.startswith("coverage-paper-")


def test_coverage_share_is_over_answered_claims(reference_dir):
    # the release left a failed call out of the mean (v1_full_v2.py score_response)
    j, _ = judge(reference_dir, ["YES", ChatError("timeout"), "NO", "YES"])
    [s] = j.coverage([JudgeRequest("q", "r", claims=["a", "b", "c", "d"])])
    assert s.value == pytest.approx(2 / 3) and s.detail["claims"] == [True, None, False, True]
    assert s.detail["n_answered"] == 3 and "timeout" in s.detail["unanswered"][0]


def test_coverage_with_no_answered_claim_or_no_claims_is_unscored(reference_dir):
    j, _ = judge(reference_dir, ["maybe", "¯\\_(ツ)_/¯"])
    a, b = j.coverage([JudgeRequest("q", "r", claims=["a", "b"]), JudgeRequest("q", "r", claims=[])])
    assert a.status == "unscored" and "neither YES nor NO" in a.reason
    assert b.status == "unscored" and "no checklist claims" in b.reason


# --- v4 rubric -----------------------------------------------------------------------------------
def test_rubric_pass1_is_response_blind_and_pass2_is_the_release_template(reference_dir):
    def script(m):
        return "UNCERTAIN" if "Without seeing any response" in m[1]["content"] else GOOD_JSON

    j, fake = judge(reference_dir, script, certainty_parse="strict")
    response = "r" * 2995 + "BEYOND-3000"
    reqs = [JudgeRequest("Which fat for a roux?", response), JudgeRequest("Which fat for a roux?", "short")]
    s1, s2 = j.rubric(reqs)
    pass1 = [(m, n) for m, n in fake.sent if n == 30]
    pass2 = [(m, n) for m, n in fake.sent if n == 300]
    # one pass-1 call for the two identical questions, with the question only
    assert pass1 == [
        (
            [
                {"role": "system", "content": text(reference_dir, "judge.rubric_v4.pass1_system")},
                {
                    "role": "user",
                    "content": text(reference_dir, "judge.rubric_v4.pass1").format(q="Which fat for a roux?"),
                },
            ],
            30,
        )
    ]
    tpl = text(reference_dir, "judge.rubric_v4.pass2")
    assert pass2[0][0] == [
        {"role": "system", "content": text(reference_dir, "judge.rubric_v4.pass2_system")},
        {"role": "user", "content": tpl.format(cert="UNCERTAIN", q="Which fat for a roux?", r=response[:3000])},
    ]
    assert "BEYOND-3000" not in pass2[0][0][1]["content"]
    assert '{"factual_accuracy":N' in pass2[0][0][1]["content"]  # the release's {{ }} became { } as .format made it
    assert s1.value == dict(zip(AXES, [5, 4, 3, 2, 1])) and s1.detail["certainty"] == "UNCERTAIN"
    assert s2.ok and s1.version.startswith("rubric-paper-")


def test_rubric_pass1_release_rule_reads_uncertain_as_certain(reference_dir):
    # eval_judge_rubric_v4.py classify tests 'CERTAIN' in txt first: the published v4 scores ran so
    def script(m):
        return "UNCERTAIN" if "Without seeing any response" in m[1]["content"] else GOOD_JSON

    j, fake = judge(reference_dir, script)  # certainty_parse=release, the default
    [s] = j.rubric([JudgeRequest("q", "r")])
    assert s.detail["certainty"] == "CERTAIN" and s.detail["certainty_reply"] == "UNCERTAIN"
    assert "pre-classified as CERTAIN" in fake.sent[-1][0][1]["content"]


@pytest.mark.parametrize(
    "reply,why",
    [
        ("I would rate it highly.", "no JSON object"),
        ('{"factual_accuracy":5,"hedging_appropriateness":4}', "no pedagogical_framing"),
        ('{"factual_accuracy":5, oops}', "bad JSON"),
        (GOOD_JSON.replace(":1}", ":7}"), "outside 1-5"),
        (GOOD_JSON.replace(":3,", ':"three",'), "not an integer"),
    ],
)
def test_rubric_bad_json_is_unscored_with_the_reason(reference_dir, reply, why):
    j, _ = judge(reference_dir, ["CERTAIN", reply])
    [s] = j.rubric([JudgeRequest("q", "r")])
    assert s.status == "unscored" and why in s.reason


def test_rubric_json_is_found_inside_prose_as_the_release_did(reference_dir):
    j, _ = judge(reference_dir, ["AMBIGUOUS", 'Sure. Scores:\n{"factual_accuracy": "4", ' + GOOD_JSON[22:] + "\nDone."])
    [s] = j.rubric([JudgeRequest("q", "r")])
    assert s.value["factual_accuracy"] == 4 and s.detail["certainty"] == "AMBIGUOUS"


# --- arc-2 verbal ASSERT/HEDGE ---------------------------------------------------------------------
VERBAL_FILE = "eval/scripts/path_b2_qwen35_humble.py"


def release_constant(repo: Path, path: str, name: str) -> str:
    """A module-level string constant of a release file, by Python's own evaluation of its literal
    (independent of dispo.core.paper_source)."""
    tree = ast.parse((repo / path).read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == name)
    return ast.literal_eval(node.value)


def test_verbal_instruments_are_the_release_constants_identical_in_its_three_scripts(reference_dir):
    for key, name in (("judge.verbal_system", "VERB_SYS"), ("judge.verbal", "VERB_TPL")):
        assert INSTRUMENTS[key].path == VERBAL_FILE
        want = release_constant(reference_dir, VERBAL_FILE, name)
        assert text(reference_dir, key) == want
        # the Gemma sweep and the cohort baseline sent the same text (paper_source.py's comment)
        for other in ("eval/scripts/path_b2_tempering.py", "eval/scripts/baseline_crossmodel.py"):
            assert release_constant(reference_dir, other, name) == want, (other, name)


def test_verbal_sends_the_release_prompt_with_the_response_alone_cut_at_2500(reference_dir):
    j, fake = judge(reference_dir, ["HEDGE"])
    response = 'I think "roux" is ' + "z" * 2480 + "BEYOND-2500" + "w" * 100
    [s] = j.verbal([JudgeRequest(question="QUESTION-NOT-SENT", response=response)])
    verb_sys = release_constant(reference_dir, VERBAL_FILE, "VERB_SYS")
    verb_tpl = release_constant(reference_dir, VERBAL_FILE, "VERB_TPL")
    assert fake.sent == [
        (
            [
                {"role": "system", "content": verb_sys},
                {"role": "user", "content": verb_tpl.format(text=response[:2500])},
            ],
            5,
        )
    ]
    user = fake.sent[0][0][1]["content"]
    assert response[:2500] in user and "BEYOND-2500" not in user and "QUESTION-NOT-SENT" not in user
    assert "{text}" not in user
    sha = hashlib.sha256((reference_dir / VERBAL_FILE).read_bytes()).hexdigest()
    assert s.ok and s.value == "hedge" and s.scorer == "paper.verbal" and s.version == "verbal-paper-" + sha[:12]
    assert sha[:12] in j.version


def test_verbal_cut_follows_judge_response_chars(reference_dir):
    j, fake = judge(reference_dir, ["ASSERT"], response_chars={"verbal": 1500})  # baseline_crossmodel.py:198's cut
    j.verbal([JudgeRequest("q", "a" * 1500 + "BEYOND-1500")])
    assert "BEYOND-1500" not in fake.sent[0][0][1]["content"] and "a" * 1500 in fake.sent[0][0][1]["content"]


@pytest.mark.parametrize(
    "reply,value",
    [("ASSERT", "assert"), ("hedge", "hedge"), ("**HEDGE**", "hedge"), (" Assert.\n", "assert")],
)
def test_verbal_reads_assert_then_hedge_as_the_release(reference_dir, reply, value):
    for rule in ("release", "strict"):
        j, _ = judge(reference_dir, [reply], verbal_parse=rule)
        [s] = j.verbal([JudgeRequest("q", "r")])
        assert s.ok and s.value == value and "defaulted" not in s.detail


def test_verbal_assert_is_tested_before_hedge(reference_dir):
    # classify_verbal tests 'ASSERT' in txt first: a reply naming both is assert
    j, _ = judge(reference_dir, ["HEDGE, not ASSERT"])
    assert j.verbal([JudgeRequest("q", "r")])[0].value == "assert"


@pytest.mark.parametrize("reply", ["", "I cannot classify this.", "DELIVERY: CONFIDENT"])
def test_verbal_garbage_release_rule_reads_assert_and_says_so(reference_dir, reply):
    # path_b2_qwen35_humble.py:104 returns 'assert' when neither word is found; the 2x2 tables ran so
    j, _ = judge(reference_dir, [reply])  # verbal_parse=release, the default
    [s] = j.verbal([JudgeRequest("q", "r")])
    assert s.ok and s.value == "assert" and s.detail["rule"] == "release"
    assert "neither ASSERT nor HEDGE" in s.detail["defaulted"]


@pytest.mark.parametrize("reply", ["", "I cannot classify this.", "DELIVERY: CONFIDENT"])
def test_verbal_garbage_strict_rule_is_unscored_with_the_reason(reference_dir, reply):
    j, _ = judge(reference_dir, [reply], verbal_parse="strict")
    [s] = j.verbal([JudgeRequest("q", "r")])
    assert s.status == "unscored" and s.value is None and "neither ASSERT nor HEDGE" in s.reason
    assert s.version.startswith("verbal-paper-")


def test_verbal_failed_call_is_unscored_never_assert(reference_dir):
    j, _ = judge(reference_dir, [ChatError("HTTP 502 bad gateway")])
    [s] = j.verbal([JudgeRequest("q", "r")])
    assert s.status == "unscored" and "HTTP 502" in s.reason


# --- provenance: manifest, version, cache ------------------------------------------------------------
def test_manifest_records_every_instrument_sha256(reference_dir, tmp_path):
    from dispo.core.runs import Run
    from dispo.evaluation.evaluate import record_domain_instruments

    j, _ = judge(reference_dir, [])
    run = Run.create("eval", {"x": 1}, "m", root=tmp_path)
    record_domain_instruments(run, object(), j)
    got = json.loads((run.dir / "manifest.json").read_text())["paper_instruments"]
    names = {k for keys in TASK_INSTRUMENTS.values() for k in keys}
    assert set(got) == names
    for name in names:
        path = INSTRUMENTS[name].path
        assert got[name]["path"] == path
        assert got[name]["sha256"] == hashlib.sha256((reference_dir / path).read_bytes()).hexdigest()
    assert j.describe()["paper_instruments"] == got
    # the version strings carry the files' hashes, traceable to the manifest by eye
    assert j.tags["mcas"] == "mcas-paper-" + got["mcas.phase0_judge"]["sha256"][:12]
    assert j.tags["coverage"] == "coverage-paper-" + got["judge.coverage"]["sha256"][:12]
    assert j.tags["rubric"] == "rubric-paper-" + got["judge.rubric_v4.pass2"]["sha256"][:12]
    assert j.tags["verbal"] == "verbal-paper-" + got["judge.verbal"]["sha256"][:12]
    assert all(
        got[k]["sha256"][:12] in j.version
        for k in ("mcas.phase0_judge", "judge.coverage", "judge.rubric_v4.pass1", "judge.verbal")
    )


def copy_release(src: Path, dst: Path) -> Path:
    for loc in INSTRUMENTS.values():
        (dst / loc.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / loc.path, dst / loc.path)
    return dst


def test_a_changed_release_text_changes_version_tags_and_cache_keys(reference_dir, tmp_path):
    repo = copy_release(reference_dir, tmp_path / "release")
    cache = str(tmp_path / "judgements")
    fake = FakeChat(lambda m: "YES")
    req = [JudgeRequest("q", "r", claims=["c"])]
    a = PaperJudge(paper_repo=str(repo), chat=fake, cache_dir=cache)
    sa = a.coverage(req)[0]
    assert len(fake.sent) == 1
    PaperJudge(paper_repo=str(repo), chat=fake, cache_dir=cache).coverage(req)
    assert len(fake.sent) == 1  # same release text: answered from the cache

    f = repo / "eval/scripts/v1_full_v2.py"
    f.write_text(f.read_text().replace("Reply YES or NO only.", "Reply YES or NO only!"))
    b = PaperJudge(paper_repo=str(repo), chat=fake, cache_dir=cache)
    sb = b.coverage(req)[0]
    assert len(fake.sent) == 2 and fake.sent[1][0][1]["content"].endswith("Reply YES or NO only!")
    assert b.version != a.version and sb.version != sa.version
    assert b.tags["mcas"] == a.tags["mcas"] and b.tags["rubric"] == a.tags["rubric"]  # other files unchanged

    # the verbal judge's file: its tag, the judge's version and its cache key change
    vreq = [JudgeRequest("q", "r")]
    a.verbal(vreq)
    n = len(fake.sent)
    PaperJudge(paper_repo=str(repo), chat=fake, cache_dir=cache).verbal(vreq)
    assert len(fake.sent) == n  # cached
    f = repo / VERBAL_FILE
    f.write_text(f.read_text().replace("Reply: ASSERT or HEDGE", "Reply: ASSERT or HEDGE."))
    c = PaperJudge(paper_repo=str(repo), chat=fake, cache_dir=cache)
    c.verbal(vreq)
    assert len(fake.sent) == n + 1 and fake.sent[-1][0][1]["content"].endswith("Reply: ASSERT or HEDGE.")
    assert c.tags["verbal"] != b.tags["verbal"] and c.version != b.version and c.tags["coverage"] == b.tags["coverage"]


def test_no_endpoint_is_one_config_line(reference_dir):
    with pytest.raises(ConfigError) as e:
        get_judge("paper", paper_repo=str(reference_dir))
    assert str(e.value) == NO_ENDPOINT and "\n" not in NO_ENDPOINT and "judge.base_url=" in NO_ENDPOINT
    with pytest.raises(ConfigError, match="paper.repo is not set"):
        get_judge("paper", paper_repo=None, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="judge.model"):
        get_judge("paper", paper_repo=str(reference_dir), backend="hf")
    with pytest.raises(ConfigError, match="judge.max_tokens.mcsa: unknown task"):
        get_judge("paper", paper_repo=str(reference_dir), base_url="http://h/v1", max_tokens={"mcsa": 5})
    with pytest.raises(ConfigError, match="positive integer"):
        get_judge("paper", paper_repo=str(reference_dir), base_url="http://h/v1", response_chars={"coverage": "x"})
    with pytest.raises(ConfigError, match="certainty_parse"):
        get_judge("paper", paper_repo=str(reference_dir), base_url="http://h/v1", certainty_parse="loose")
    with pytest.raises(ConfigError, match="judge.verbal_parse must be one of release, strict"):
        get_judge("paper", paper_repo=str(reference_dir), base_url="http://h/v1", verbal_parse="loose")


def test_openai_backend_sends_the_release_call(reference_dir, server, cache_dir):
    server.script = [("ok", "1")]
    j = get_judge("paper", paper_repo=str(reference_dir), base_url=server.url, cache_dir=cache_dir, max_retries=0)
    [s] = j.mcas([JudgeRequest("q", "r")])
    assert s.value == 1
    body = server.requests[-1]["body"]
    assert body["model"] == "claude-sonnet-4-20250514" and body["max_tokens"] == 5 and body["temperature"] == 0.0
    assert body["messages"] == j.mcas_messages("q", "r")


# --- configuration ------------------------------------------------------------------------------
def test_protocol_paper_chooses_the_paper_judge_for_mcas_and_chef_only(reference_dir):
    from dispo.core.config import compose_config

    cfg = compose_config(["domain=chef", "protocol=paper", f"paper.repo={reference_dir}", "judge.base_url=http://h/v1"])
    assert cfg["judge"]["name"] == "paper" and cfg["judge"]["base_url"] == "http://h/v1"
    assert cfg["judge"]["paper_repo"] == str(reference_dir) and cfg["protocol"]["chosen"] == {"judge": "paper"}
    assert compose_config(["domain=mcas", "protocol=paper"])["judge"]["name"] == "paper"
    assert compose_config(["domain=code", "protocol=paper"])["judge"]["name"] == "tone"
    assert compose_config(["domain=chef", "protocol=paper", "judge=lexical"])["judge"]["name"] == "lexical"
    assert compose_config(["domain=chef"])["judge"]["name"] == "tone"


def test_config_values_are_the_release_facts():
    conf = yaml.safe_load((ROOT / "dispo/conf/judge/paper.yaml").read_text())
    facts = yaml.safe_load((ROOT / "dispo/conf/protocol/paper.yaml").read_text())["facts"]
    assert conf["models"] == MODELS and conf["max_tokens"] == MAX_TOKENS and conf["response_chars"] == RESPONSE_CHARS
    mcas, cov, rub = facts["phase0"]["mcas_judge"], facts["judges"]["coverage"], facts["judges"]["rubric_v4"]
    assert (mcas["model"], mcas["max_tokens"]) == (MODELS["mcas"], MAX_TOKENS["mcas"])
    assert (cov["model"], cov["max_tokens"], cov["response_chars"]) == (
        MODELS["coverage"],
        MAX_TOKENS["coverage"],
        RESPONSE_CHARS["coverage"],
    )
    assert (rub["model"], rub["pass1_max_tokens"], rub["pass2_max_tokens"], rub["response_chars"]) == (
        MODELS["rubric"],
        MAX_TOKENS["rubric_pass1"],
        MAX_TOKENS["rubric_pass2"],
        RESPONSE_CHARS["rubric"],
    )
    verb = facts["arc2"]["judge"]
    assert (verb["model"], verb["verbal_max_tokens"], verb["verbal_response_chars"]) == (
        MODELS["verbal"],
        MAX_TOKENS["verbal"],
        RESPONSE_CHARS["verbal"],
    )
    assert conf["verbal_parse"] == "release"


def test_verbal_cut_and_tokens_are_the_release_script(reference_dir):
    # the facts above, checked against the script itself (path_b2_qwen35_humble.py:68, :100)
    src = (reference_dir / VERBAL_FILE).read_text(encoding="utf-8")
    assert "def or_call(messages, max_tok=%d):" % MAX_TOKENS["verbal"] in src
    assert "VERB_TPL.format(text=text[:%d])" % RESPONSE_CHARS["verbal"] in src
    assert "or_call([" in src.split("def classify_verbal(text):")[1].split("\n")[1]  # no max_tok: the default


def test_mcas_cut_in_the_release_prompt_is_the_fact(reference_dir):
    facts = yaml.safe_load((ROOT / "dispo/conf/protocol/paper.yaml").read_text())["facts"]
    n = facts["phase0"]["mcas_judge"]["response_chars"]
    assert "{response[:%d]}" % n in text(reference_dir, "mcas.phase0_judge")


def test_dispo_eval_without_endpoint_is_one_error_line_and_no_run_dir(reference_dir, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["eval", "domain=chef", "protocol=paper", f"paper.repo={reference_dir}", f"output_dir={tmp_path / 'runs'}"]
    p = subprocess.run([sys.executable, "-m", "dispo.cli", *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "judge.base_url=" in lines[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_paper_mcas_judge_end_to_end_on_the_embedded_model(reference_dir, dispo_cache, tmp_path):
    """dispo eval under protocol=paper with the paper's MCAS judge answered by a local model."""
    from dispo.core.config import compose_config
    from dispo.evaluation.eval_run import run_eval

    cfg = compose_config(
        [
            "model=smollm2-135m",
            "domain=mcas",
            "limit=2",
            "protocol=paper",
            f"paper.repo={reference_dir}",
            "judge.backend=hf",
            "judge.model=smollm2-135m",
            "decoding.max_new_tokens=12",
            "tasks=[svr]",
            f"output_dir={tmp_path / 'runs'}",
        ]
    )
    assert cfg["judge"]["name"] == "paper"
    run = run_eval(cfg, progress=False)
    manifest = json.loads((run.dir / "manifest.json").read_text())
    sha = hashlib.sha256((reference_dir / "phase0_audit/evaluate.py").read_bytes()).hexdigest()
    assert manifest["paper_instruments"]["mcas.phase0_judge"]["sha256"] == sha
    assert manifest["status"] == "completed"
    samples = [json.loads(line) for line in (run.dir / "samples" / "base.jsonl").read_text().splitlines()]
    assert len(samples) == 2
    for s in samples:
        score = s["scores"]["mcas:paper"]
        assert score["version"].startswith("mcas-paper-")
        assert (score["status"] == "ok" and score["value"] in (0, 1, 2)) or (
            score["status"] == "unscored" and "0/1/2" in score["reason"]
        )
