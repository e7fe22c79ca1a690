"""Hostile input at the command line: every bad input is one `error:` line with exit code 2,
never a traceback or an `internal` error, and it changes nothing on disk.

All commands run through dispo's real entry point (dispo.cli.main) in-process, so hypothesis
can try many inputs within the suite's time budget.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.helpers.relhelp import cli, snapshot

SETTINGS = dict(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=True
)


def assert_one_line_exit_2(code: int, err: str, *must_contain: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "internal" not in lines[0], lines[0]
    for s in must_contain:
        assert s in lines[0], (s, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- overrides

KEYS = [
    "model",
    "domain",
    "judge",
    "decoding",
    "arc",
    "launcher",
    "seed",
    "limit",
    "decoding.max_new_tokens",
    "decoding.temperature",
    "decoding.top_p",
    "decoding.batch_size",
    "judge.model",
    "arc.preset",
    "arms",
    "disposition",
    "tasks",
    "falsify.seeds",
    "nope",
    "model.name",
    "+model",
    "+extra",
    "~seed",
    "++seed",
]
VALUE_CHARS = string.ascii_letters + string.digits + " .,:;=+-_/\\'\"[]{}()$%*!?@#~\t" + "é∞\x00"
values = st.one_of(
    st.text(VALUE_CHARS, max_size=12),
    st.sampled_from(
        [
            "",
            "null",
            "-1",
            "0",
            "1e9",
            "nan",
            "inf",
            "true",
            "[1,2",
            "{a:",
            "${oc.env:HOME}",
            "${x}",
            "${oc.decode:'[1'}",
            "'",
            "tiny-llama",
            "chef",
            "lexical",
            "smoke",
            "[]",
            "{}",
            "1.5",
            "0x10",
        ]
    ),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(string.ascii_letters + "._+~-[]$", min_size=1, max_size=10))
override = st.one_of(st.builds(lambda k, v: f"{k}={v}", keys, values), st.text(VALUE_CHARS, min_size=1, max_size=10))


@settings(max_examples=60, **SETTINGS)
@given(st.lists(override, min_size=1, max_size=3))
def test_random_overrides_give_a_config_or_one_config_error_line(ovs):
    """Protects: dispo.core.config.compose_config's error funnel (Hydra/OmegaConf exceptions of
    any type -> ConfigError with one line) and the CLI's DispoError handler (exit 2). Any
    `key=value` list either composes or fails as one `error:` line, exit 2."""
    from dispo.core.config import compose_config
    from dispo.core.errors import ConfigError

    assume(all(not o.startswith("-") for o in ovs))  # options are Typer's, not overrides
    try:
        cfg = compose_config(ovs)
    except ConfigError as e:
        assert "\n" not in str(e).strip(), str(e)
        # the CLI fails at compose time: never loads a model or creates a run
        code, _, err = cli("eval", *ovs, "--run-dir", "/nonexistent-dispo-run")
        assert_one_line_exit_2(code, err)
        return
    assert isinstance(cfg, dict) and "model" in cfg


# --------------------------------------------------------------------------- dispo import


def _good(i: int) -> dict:
    return {
        "id": f"q{i}",
        "prompt": f"question {i}",
        "response": f"answer {i}",
        "correct": i % 2 == 0,
        "verbal": "assert" if i % 3 else "hedge",
    }


BREAKS = {
    "truncated": lambda rec: json.dumps(rec)[: len(json.dumps(rec)) // 2].encode(),
    "not_object": lambda rec: b"[1, 2, 3]",
    "no_id": lambda rec: json.dumps({k: v for k, v in rec.items() if k != "id"}).encode(),
    "dup_id": lambda rec: json.dumps({**rec, "id": "q0"}).encode(),
    "bad_correct": lambda rec: json.dumps({**rec, "correct": "yes"}).encode(),
    "bad_coverage": lambda rec: json.dumps({**rec, "coverage": 1.5}).encode(),
    "bad_verbal": lambda rec: json.dumps({**rec, "verbal": "maybe"}).encode(),
    "bad_score": lambda rec: json.dumps({**rec, "score": 7}).encode(),
    "bad_utf8": lambda rec: json.dumps(rec).encode()[:-2] + b'\xff\xfe"}',
    "nan": lambda rec: json.dumps({**rec, "coverage": float("nan")}).encode(),
}


@pytest.fixture
def imported_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path / "runs"))
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(_good(i)) + "\n" for i in range(6)))
    code, out, err = cli("import", str(good), "--arm", "base")
    assert code == 0, err
    run = next((tmp_path / "runs").iterdir())
    code, out, err = cli("import", str(good), "--arm", "dd", "--run", str(run))
    assert code == 0, err
    return run


@settings(max_examples=25, **SETTINGS)
@given(n=st.integers(1, 6), bad_at=st.integers(0, 5), kind=st.sampled_from(sorted(BREAKS)), new_run=st.booleans())
def test_import_of_a_broken_file_is_one_line_naming_file_and_line_and_changes_nothing(
    imported_run, tmp_path, n, bad_at, kind, new_run
):
    """Protects: dispo.evaluation.importer.read_arm_jsonl validating the whole file before
    dispo.evaluation.import_run writes anything. A broken line anywhere -> one line `FILE:LINE: ...`,
    exit 2; an existing run stays byte-identical and no new run dir appears."""
    bad_at = min(bad_at, n - 1)
    if kind == "dup_id" and bad_at == 0:
        bad_at, n = 1, max(n, 2)
    lines = [json.dumps(_good(i)).encode() for i in range(n)]
    lines[bad_at] = BREAKS[kind](_good(bad_at))
    f = tmp_path / "broken.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    runs_before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    before = snapshot(imported_run)
    args = ["import", str(f), "--arm", "new"] + ([] if new_run else ["--run", str(imported_run)])
    code, _, err = cli(*args)
    assert_one_line_exit_2(code, err, f"{f}:{bad_at + 1}")
    assert snapshot(imported_run) == before
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == runs_before


# --------------------------------------------------------------------------- dispo probe


def _good_npz(path: Path, n: int = 24, d: int = 3) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.normal(size=(n, d)), y=np.arange(n) % 2)
    return path


def _bad_arrays(kind: str, rng) -> tuple[dict, str | None]:
    """(arrays to save, field the error must name or None for whole-file problems)."""
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    if kind == "no_X":
        return {"features": X, "y": y}, "X"
    if kind == "no_y":
        return {"X": X, "labels": y}, "y"
    if kind == "X_1d":
        return {"X": X[:, 0], "y": y}, "X"
    if kind == "X_3d":
        return {"X": X[:, :, None], "y": y}, "X"
    if kind == "X_empty":
        return {"X": X[:0], "y": y[:0]}, "X"
    if kind == "X_nan":
        X[rng.integers(20), rng.integers(3)] = rng.choice([np.nan, np.inf, -np.inf])
        return {"X": X, "y": y}, "X"
    if kind == "X_str":
        return {"X": np.full(X.shape, "abc"), "y": y}, "X"
    if kind == "y_2d":
        return {"X": X, "y": y[:, None]}, "y"
    if kind == "y_len":
        return {"X": X, "y": y[:-3]}, "y"
    if kind == "y_values":
        y = y.copy()
        y[rng.integers(20)] = rng.choice([2, -1])
        return {"X": X, "y": y}, "y"
    if kind == "y_frac":
        return {"X": X, "y": y * 0.5}, "y"
    if kind == "y_nan":
        return {"X": X, "y": np.where(y == 1, np.nan, 0.0)}, "y"
    if kind == "one_class":
        return {"X": X, "y": np.ones(20, dtype=int)}, "y"
    raise AssertionError(kind)


ARRAY_KINDS = [
    "no_X",
    "no_y",
    "X_1d",
    "X_3d",
    "X_empty",
    "X_nan",
    "X_str",
    "y_2d",
    "y_len",
    "y_values",
    "y_frac",
    "y_nan",
    "one_class",
]
FILE_KINDS = ["garbage", "empty", "truncated_zip", "missing", "pickled_object"]


@settings(max_examples=40, **SETTINGS)
@given(kind=st.sampled_from(ARRAY_KINDS + FILE_KINDS), as_test=st.booleans(), seed=st.integers(0, 2**16))
def test_probe_bad_npz_is_one_line_naming_file_and_field(tmp_path, kind, as_test, seed):
    """Protects: dispo.probes.probe.load/validate and dispo.probes.features.load_npz (no pickles). Wrong
    shapes, NaN/inf, one class, missing keys, non-numeric arrays, garbage, truncated or
    missing files -> one `error:` line naming the file (and the field for array problems),
    exit 2."""
    rng = np.random.default_rng(seed)
    good = _good_npz(tmp_path / "good.npz")
    bad = tmp_path / f"bad_{kind}.npz"
    field = None
    if kind in ARRAY_KINDS:
        arrays, field = _bad_arrays(kind, rng)
        np.savez(bad, **arrays)
    elif kind == "garbage":
        bad.write_bytes(rng.bytes(int(rng.integers(1, 300))))
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated_zip":
        data = _good_npz(tmp_path / "tmp.npz").read_bytes()
        bad.write_bytes(data[: int(rng.integers(1, len(data) - 1))])
    elif kind == "pickled_object":
        np.savez(bad, X=np.array([{"a": 1}] * 20, dtype=object), y=np.arange(20) % 2)
    train, test = (good, bad) if as_test else (bad, good)
    code, _, err = cli("probe", str(train), str(test), "--cv", "2")
    line = assert_one_line_exit_2(code, err, str(bad))
    if field is not None:
        assert f"field {field}" in line or f"field '{field}'" in line or "y has" in line or "X has" in line, line


# --------------------------------------------------------------------------- corrupt run dirs

OVERRIDES = ["model=tiny-llama", "domain=code", "limit=2", "decoding.max_new_tokens=8"]


@pytest.fixture
def eval_run(tmp_path, monkeypatch, dispo_cache):
    """A finished eval run with two arms and a claim, made through the Run API (no model)."""
    from dispo.core.config import compose_config
    from dispo.core.runs import Run
    from dispo.stats.summary import arm_metrics, claims

    monkeypatch.chdir(tmp_path)
    cfg = compose_config(OVERRIDES)
    run = Run.create("eval", cfg, "tiny-llama", root=tmp_path / "runs", overrides=OVERRIDES)
    arms = {}
    for arm in ("base", "dd"):
        rows = [
            {
                "id": f"HumanEval/{i}",
                "prompt": "p",
                "output": "o " * i,
                "finish_reason": "stop",
                "n_tokens": i + 1,
                "scores": {
                    "correct:tests": {
                        "scorer": "tests.correct",
                        "version": "humaneval-v1",
                        "status": "ok",
                        "value": (i + (arm == "dd")) % 2 == 0,
                        "reason": None,
                        "detail": {},
                    }
                },
            }
            for i in range(4)
        ]
        run.write_samples(arm, rows)
        run.complete_stage(f"arm:{arm}", {"n": 4, "decoding": cfg["decoding"], "seed": 0})
        arms[arm] = rows
    run.write_results({a: arm_metrics(s) for a, s in arms.items()}, claims(arms, "base", ["pass@1"]))
    run.finish("completed")
    return run.dir


def _truncate_manifest(run: Path, data, rng) -> str:
    p = run / "manifest.json"
    text = p.read_bytes()
    cut = data.draw(st.integers(0, text.rstrip().rfind(b"}") - 1))
    p.write_bytes(text[:cut])
    return "manifest.json"


def _garbage_config(run: Path, data, rng) -> str:
    garbage = data.draw(
        st.one_of(
            st.sampled_from(
                [
                    b"- a\n- b\n",
                    b"just a string\n",
                    b"42\n",
                    b"{unclosed: [\n",
                    b"a: b: c\n",
                    b"\tkey: 1\n",
                    b"\xff\xfe\x00bad",
                    b"",
                    b"null\n",
                    b"key: [1, 2\n",
                    b"? [\n",
                    b"*alias\n",
                ]
            ),
            st.binary(min_size=1, max_size=40).filter(lambda b: b"\xff" in b or b"\x00" in b),
        )
    )
    (run / "config.yaml").write_bytes(garbage)
    return "config.yaml"


def _bad_jsonl_line(run: Path, data, rng) -> str:
    p = run / "samples" / data.draw(st.sampled_from(["base.jsonl", "dd.jsonl"]))
    lines = p.read_bytes().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    lines[i] = data.draw(
        st.one_of(
            st.sampled_from(
                [
                    b'{"id": "x", "output": ',
                    b"[1, 2]",
                    b"42",
                    b'"a string"',
                    b"null",
                    b"{bad json}",
                    b"\xff\xfe",
                    b'{"id": "HumanEval/0"',
                ]
            ),
            st.text(string.printable, min_size=1, max_size=20)
            .map(str.encode)
            .filter(lambda b: b.strip() and not _is_json_object(b)),
        )
    )
    p.write_bytes(b"\n".join(lines) + b"\n")
    return f"{p.name}:{i + 1}"


def _is_json_object(b: bytes) -> bool:
    try:
        return isinstance(json.loads(b), dict)
    except ValueError:
        return False


CORRUPTIONS = {"manifest": _truncate_manifest, "config": _garbage_config, "jsonl": _bad_jsonl_line}


@settings(max_examples=24, **SETTINGS)
@given(
    data=st.data(),
    corruption=st.sampled_from(sorted(CORRUPTIONS)),
    command=st.sampled_from(["show", "falsify", "eval"]),
)
def test_corrupt_run_dir_is_one_line_exit_2_and_nothing_changes(eval_run, data, corruption, command, tmp_path):
    """Protects: Run.open / Run.manifest / Run.config / Run.read_samples turning corruption
    into RunDirError before any write. A truncated manifest.json, a config.yaml that is not
    a YAML mapping, or a samples line that is not a JSON object -> `dispo show`, `dispo
    falsify` and `dispo eval --run-dir` print one `error:` line naming the file, exit 2,
    and leave every file of the run byte-identical (no status update, no falsify/ dir)."""
    import shutil

    run = tmp_path / f"victim-{corruption}-{command}"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(eval_run, run)
    names = CORRUPTIONS[corruption](run, data, None)
    before = snapshot(run)
    args = {
        "show": ["show", str(run)],
        "falsify": ["falsify", str(run), "-q"],
        "eval": ["eval", *OVERRIDES, "--run-dir", str(run), "-q"],
    }[command]
    code, _, err = cli(*args)
    assert_one_line_exit_2(code, err, names)
    assert snapshot(run) == before
