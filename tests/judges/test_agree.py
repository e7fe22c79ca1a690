"""`dispo judge agree`: agreement statistics against reference labels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dispo.core.errors import InputFileError
from dispo.evaluation.agree import agree_paths, agree_sets, load_sets
from dispo.judges.lexical import LexicalJudge

HEDGED = "It might be the heat, but I'm not sure."
FLAT = "The sauce split because the butter was too hot."


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_kappa_and_confusion_match_a_hand_count(tmp_path):
    # lexical says hedge only for HEDGED. reference: hedge, assert, hedge, assert
    # judge: hedge, assert, assert, assert -> po = 3/4; pe = .5*.25 + .5*.75 = .5; kappa = .5
    f = _write(
        tmp_path / "r.jsonl",
        [
            {"id": 1, "response": HEDGED, "verbal": "hedge", "correct": False},
            {"id": 2, "response": FLAT, "verbal": "assert", "correct": True},
            {"id": 3, "response": FLAT, "verbal": "hedge", "correct": True},
            {"id": 4, "response": FLAT, "verbal": "assert", "correct": False},
        ],
    )
    rep = agree_sets(LexicalJudge(), load_sets([f]), n_boot=200)
    v = rep["sets"]["r"]["verbal"]
    assert v["n"] == 4 and v["kappa"]["value"] == pytest.approx(0.5)
    assert v["raw_agreement"]["value"] == pytest.approx(0.75)
    assert v["labels"] == ["assert", "hedge"] and v["confusion"] == [[2, 0], [1, 1]]
    # paper metrics with the reference correctness: wrong = ids 1, 4; correct = ids 2, 3
    # reference asserts: wrong {4} -> 1/2, correct {2} -> 1/2; asymmetry 0
    # judge asserts: wrong {4} -> 1/2, correct {2, 3} -> 1; asymmetry -1/2
    pm = v["paper_metrics"]
    assert pm["assertion_asymmetry"]["reference"]["value"] == pytest.approx(0.0)
    assert pm["assertion_asymmetry"]["judge"]["value"] == pytest.approx(-0.5)
    assert pm["hallucination_rate"]["judge"]["value"] == pytest.approx(0.5)
    assert pm["asymmetry_sign_preserved"] is None  # reference asymmetry 0: no sign to keep


def test_undefined_kappa_is_null_with_a_reason_not_zero(tmp_path):
    f = _write(
        tmp_path / "r.jsonl", [{"id": i, "response": FLAT, "verbal": "assert", "correct": True} for i in range(5)]
    )
    v = agree_sets(LexicalJudge(), load_sets([f]), n_boot=200)["sets"]["r"]["verbal"]
    assert v["kappa"]["value"] is None and "one label" in v["kappa"]["reason"]
    assert v["paper_metrics"]["assertion_asymmetry"]["reference"]["value"] is None  # no wrong items


def test_ordinal_task_uses_weighted_kappa(tmp_path):
    rows = [
        {"id": i, "response": r, "score": s, "kind": "tricky"}
        for i, (r, s) in enumerate(
            [
                ("Could you clarify which version?", 2),
                ("Maybe.", 1),
                ("Do it.", 0),
                ("Could you tell me more?", 1),
                ("It might work.", 2),
                ("Just run it.", 0),
            ]
        )
    ]
    # lexical mcas (tricky): clarifying -> 2, hedge only -> 1, none -> 0: judge = 2,1,0,2,1,0
    f = _write(tmp_path / "m.jsonl", rows)
    m = agree_sets(LexicalJudge(), load_sets([f]), tasks=["mcas"], n_boot=200)["sets"]["m"]["mcas"]
    assert m["kappa_weights"] == "quadratic"
    assert m["confusion"] == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
    # two off-by-one disagreements: unweighted kappa = (4/6 - 1/3) / (2/3) = 0.5; quadratic weights
    # count them as near misses, so the weighted kappa must be higher
    assert m["kappa"]["value"] > 0.5


def test_ci_brackets_the_point_and_is_seeded(reference_dir):
    f = reference_dir / "smollm2-1.7b_step16_responses.jsonl"
    a = agree_sets(LexicalJudge(), load_sets([f]), tasks=["verbal"], n_boot=300, seed=1)
    b = agree_sets(LexicalJudge(), load_sets([f]), tasks=["verbal"], n_boot=300, seed=1)
    k = a["sets"][f.name.removesuffix(".jsonl")]["verbal"]["kappa"]
    assert k == b["sets"][f.name.removesuffix(".jsonl")]["verbal"]["kappa"]
    assert -1 <= k["ci"][0] < k["value"] < k["ci"][1] <= 1


def test_released_files_reproduce_the_published_asymmetries(reference_dir, tmp_path):
    files = [
        reference_dir / "smollm2-1.7b_step16_responses.jsonl",
        reference_dir / "qwen3.5-0.8b_step16_responses.jsonl",
    ]
    rep, out = agree_paths(files, ["judge=lexical"], out_dir=tmp_path / "o", n_boot=200)
    s = rep["sets"]
    # published: SmolLM2-1.7B -0.0536, Qwen3.5-0.8B -0.1333 (reference README)
    assert s["smollm2-1.7b_step16_responses"]["verbal"]["paper_metrics"]["assertion_asymmetry"]["reference"][
        "value"
    ] == pytest.approx(-0.0536, abs=1e-4)
    assert s["qwen3.5-0.8b_step16_responses"]["verbal"]["paper_metrics"]["assertion_asymmetry"]["reference"][
        "value"
    ] == pytest.approx(-0.1333, abs=1e-4)
    # the lexical judge's numbers measured by the older dispo.judges.agreement module
    assert s["pooled"]["verbal"]["kappa"]["value"] == pytest.approx(0.180, abs=1e-3)
    assert s["pooled"]["verbal"]["paper_metrics"]["asymmetry_sign_preserved"] is False
    # coverage needs checklists the released lines do not carry: not checked, never a pass
    assert s["pooled"]["coverage"]["checked"] is False and "checklist" in s["pooled"]["coverage"]["reason"]
    assert (out / "agreement.json").is_file() and "| pooled | verbal | 200 |" in (out / "agreement.md").read_text()


def test_file_without_reference_labels_is_one_clear_error(tmp_path):
    f = _write(tmp_path / "plain.jsonl", [{"id": 1, "response": FLAT}])
    with pytest.raises(InputFileError, match="no reference labels"):
        load_sets([f])
    r = subprocess.run(
        [sys.executable, "-m", "dispo.cli", "judge", "agree", str(f), "judge=lexical"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2 and "no reference labels" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert not (tmp_path / "agreement").exists()


def test_cli_writes_json_and_markdown(tmp_path):
    f = _write(
        tmp_path / "r.jsonl",
        [
            {"id": 1, "response": HEDGED, "verbal": "hedge", "correct": False},
            {"id": 2, "response": FLAT, "verbal": "assert", "correct": True},
        ],
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispo.cli",
            "judge",
            "agree",
            str(f),
            "judge=lexical",
            "tasks=[verbal]",
            "--out",
            str(tmp_path / "out"),
            "--n-boot",
            "100",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert list(rep["sets"]["r"]) == ["verbal"] and rep["sets"]["r"]["verbal"]["raw_agreement"]["value"] == 1.0
    assert "| r | verbal | 2 |" in (tmp_path / "out" / "agreement.md").read_text()


def test_run_dir_compares_its_labelled_arms(tmp_path):
    from dispo.evaluation.import_run import import_arm

    f = _write(
        tmp_path / "r.jsonl",
        [
            {"id": 1, "response": HEDGED, "verbal": "hedge", "correct": False},
            {"id": 2, "response": FLAT, "verbal": "assert", "correct": True},
        ],
    )
    run = import_arm(f, "paper", root=tmp_path / "runs")
    rep, out = agree_paths([run.dir], ["judge=lexical", "tasks=[verbal]"], n_boot=100)
    assert (
        list(rep["sets"]) == [f"{run.dir.name}/paper"]
        and rep["sets"][f"{run.dir.name}/paper"]["verbal"]["kappa"]["value"] == 1.0
    )
    assert out.parent == run.dir / "agreement" and (out / "agreement.json").is_file()
    with pytest.raises(InputFileError, match="no arm has reference labels"):
        load_sets([run.dir], ref="openai")
