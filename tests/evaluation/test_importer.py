"""JSONL import: aliases, labels -> scores, and one-line errors naming file:line:field."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispo.core.errors import ConfigError, InputFileError
from dispo.evaluation import importer
from dispo.evaluation.importer import read_arm_jsonl


def write(tmp_path: Path, lines, name="arm.jsonl") -> Path:
    p = tmp_path / name
    body = b"".join((ln if isinstance(ln, bytes) else json.dumps(ln).encode()) + b"\n" for ln in lines)
    p.write_bytes(body)
    return p


def value(rec, key):
    return rec["scores"][key]["value"]


# ---------------------------------------------------------------- the paper's files


def test_reference_responses_import(reference_dir):
    recs = read_arm_jsonl(reference_dir / "smollm2-1.7b_step16_responses.jsonl")
    assert [r["id"] for r in recs] == [str(i) for i in range(100)]  # from prompt_i
    first = recs[0]
    assert first["prompt"] == "Chateaubriand bleu vs saignant"  # from topic
    assert first["output"].startswith("Bleu and Saignant")
    assert set(first["scores"]) == {"correct:import", "coverage:import", "verbal:import"}
    assert value(first, "coverage:import") == 0.6 and value(first, "verbal:import") == "assert"
    assert first["meta"]["model"] == "HuggingFaceTB/SmolLM2-1.7B-Instruct"


def test_reference_two_arm_files(reference_dir):
    he = read_arm_jsonl(reference_dir / "phase0_humaneval_n512.jsonl", {"passed": "dd_passed"})
    assert he[0]["id"] == "HumanEval/0" and he[0]["output_missing"] is True and he[0]["output"] == ""
    assert value(he[0], "correct:import") is True
    assert sum(value(r, "correct:import") for r in he) == 50
    mc = read_arm_jsonl(reference_dir / "phase0_mcas_prompts.jsonl", {"score": "baseline_score"})
    assert len(mc) == 500 and mc[0]["meta"]["kind"] == "tricky"
    assert {r["meta"]["kind"] for r in mc} == {"tricky", "straightforward"}
    assert value(mc[0], "mcas:import") == 1


# ---------------------------------------------------------------- aliases and labels


@pytest.mark.parametrize("alias", ["id", "task_id", "prompt_i", "i"])
def test_id_aliases(tmp_path, alias):
    recs = read_arm_jsonl(write(tmp_path, [{alias: 7, "completion": "x"}]))
    assert recs[0]["id"] == "7" and recs[0]["output"] == "x" and "output_missing" not in recs[0]


def test_record_shape(tmp_path):
    line = {
        "id": "a",
        "prompt": "Q?",
        "output": "A.",
        "finish_reason": "length",
        "n_tokens": 512,
        "correct": False,
        "verbal": "HEDGE",
    }
    r = read_arm_jsonl(write(tmp_path, [line]))[0]
    assert r["messages"] == [{"role": "user", "content": "Q?"}]
    assert (r["finish_reason"], r["n_tokens"]) == ("length", 512)
    assert value(r, "verbal:import") == "hedge"
    assert r["scores"]["correct:import"]["scorer"] == "import"


def test_correct_derived_from_coverage_only_without_explicit_label(tmp_path):
    recs = read_arm_jsonl(
        write(
            tmp_path,
            [
                {"id": 1, "coverage": 0.5},  # 0.5 >= 0.5 -> correct
                {"id": 2, "coverage": 0.4},  # below -> wrong
                {"id": 3, "coverage": 0.9, "correct": False},  # explicit label wins
            ],
        )
    )
    assert [value(r, "correct:import") for r in recs] == [True, False, False]


def test_surrogate_pair_escape_is_fine(tmp_path):
    r = read_arm_jsonl(write(tmp_path, [b'{"id": "\\ud83d\\ude00"}']))[0]
    assert r["id"] == "\U0001f600"


def test_null_label_is_unscored(tmp_path):
    r = read_arm_jsonl(write(tmp_path, [{"id": 1, "passed": None}]))[0]
    assert r["scores"]["correct:import"]["status"] == "unscored"
    assert r["scores"]["correct:import"]["value"] is None


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "lines, pattern",
    [
        ([{"id": 1}, b"{not json"], r"arm\.jsonl:2: invalid JSON"),
        ([{"id": 1}, b'{"id": "\xff"}'], r"arm\.jsonl:2: not valid UTF-8"),
        ([{"prompt": "x"}], r"arm\.jsonl:1: missing id"),
        ([{"id": 1}, {"id": 2}, {"id": 1}], r"arm\.jsonl:3: field 'id': duplicate id '1' \(first on line 1\)"),
        ([{"id": True}], r":1: field 'id'"),
        ([b"[1, 2]"], r":1: expected a JSON object"),
        ([{"id": 1, "verbal": "maybe"}], r":1: field 'verbal'"),
        ([{"id": 1, "score": 3}], r":1: field 'score'"),
        ([{"id": 1, "score": True}], r":1: field 'score'"),
        ([{"id": 1, "correct": "yes"}], r":1: field 'correct'"),
        ([{"id": 1, "coverage": 1.5}], r":1: field 'coverage'"),
        ([b'{"id": 1, "coverage": NaN}'], r":1: invalid JSON"),
        ([{"id": 1, "finish_reason": "eos"}], r":1: field 'finish_reason'"),
        ([{"id": 1, "n_tokens": -1}], r":1: field 'n_tokens'"),
        ([{"id": 1, "correct": True, "passed": False}], r":1: fields 'correct' and 'passed' disagree"),
        ([{"id": 1, "response": 5}], r":1: field 'response'"),
        ([b"", b"   "], r"no records"),
        ([b'{"id": "a\\ud800"}'], r":1: unpaired surrogate"),
    ],
)
def test_malformed_input_raises_naming_line_and_field(tmp_path, lines, pattern):
    with pytest.raises(InputFileError, match=pattern) as exc:
        read_arm_jsonl(write(tmp_path, lines))
    assert "\n" not in str(exc.value)


def test_line_over_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_LINE_BYTES", 40)
    ok_line = {"id": 1, "output": "x" * 10}  # 33 bytes + newline: within 40
    big = {"id": 2, "output": "x" * 60}
    with pytest.raises(InputFileError, match=r":2: line longer than 10 MB"):
        read_arm_jsonl(write(tmp_path, [ok_line, big]))
    assert len(read_arm_jsonl(write(tmp_path, [ok_line], "ok.jsonl"))) == 1


def test_field_map_errors(tmp_path):
    p = write(tmp_path, [{"id": 1, "baseline_passed": True}])
    with pytest.raises(ConfigError, match="unknown target 'pased'"):
        read_arm_jsonl(p, {"pased": "baseline_passed"})
    with pytest.raises(InputFileError, match=r":1: field 'dd_passed' \(mapped to passed\) missing"):
        read_arm_jsonl(p, {"passed": "dd_passed"})
    with pytest.raises(InputFileError, match="no such file"):
        read_arm_jsonl(tmp_path / "absent.jsonl")


# ---------------------------------------------------------------- properties


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=6,
)
_keys = st.sampled_from(
    [
        "id",
        "task_id",
        "i",
        "prompt",
        "topic",
        "response",
        "output",
        "correct",
        "passed",
        "coverage",
        "verbal",
        "score",
        "type",
        "finish_reason",
        "n_tokens",
        "other",
    ]
)
_objects = st.dictionaries(
    _keys, _json_values | st.sampled_from(["assert", "hedge", "stop", "length", 0.5]), max_size=6
).map(lambda d: json.dumps(d).encode())
_lines = st.lists(_objects | st.binary(max_size=30).filter(lambda b: b"\n" not in b), min_size=0, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_lines)
def test_any_input_gives_records_or_a_line_error(lines):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.jsonl"
        p.write_bytes(b"\n".join(lines))
        try:
            recs = read_arm_jsonl(p)
        except InputFileError as e:
            msg = str(e)
            assert msg.startswith(str(p)) and "\n" not in msg
            m = re.match(re.escape(str(p)) + r":(\d+):", msg)
            assert m or "no records" in msg
            if m:
                assert 1 <= int(m.group(1)) <= max(1, len(lines))
        else:
            assert recs and len({r["id"] for r in recs}) == len(recs)
            json.dumps(recs)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(raw):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.jsonl"
        p.write_bytes(raw)
        try:
            read_arm_jsonl(p)
        except InputFileError:
            pass
