"""Round trip through lm-evaluation-harness itself: run it on the embedded model, import its
sample log, and compare dispo's numbers with the ones lm-eval wrote in results_*.json.
Then regenerate the arm with dispo's engine using the log's decoding (what falsify does)
and check that the same prompts, greedy, give lm-eval's own outputs and scores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parents[1] / "data" / "interop"

pytestmark = pytest.mark.slow


def _run_lmeval(tmp_path: Path, model_dir: Path) -> Path:
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    shutil.copy(DATA / "docs.jsonl", task_dir / "docs.jsonl")
    yaml_text = (
        (DATA / "tiny_arith.yaml").read_text().replace("/tmp/interop/lmtask/docs.jsonl", str(task_dir / "docs.jsonl"))
    )
    (task_dir / "tiny_arith.yaml").write_text(yaml_text)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
    }
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir},dtype=float32",
        "--tasks",
        "tiny_arith",
        "--include_path",
        str(task_dir),
        "--device",
        "cpu",
        "--batch_size",
        "4",
        "--limit",
        "4",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    samples = list(out.rglob("samples_tiny_arith_*.jsonl"))
    assert len(samples) == 1, list(out.rglob("*"))
    return samples[0]


def test_lmeval_round_trip_and_regeneration(tmp_path):
    pytest.importorskip("lm_eval")
    from dispo.evaluation.import_run import import_logs
    from dispo.falsify.context import arm_provenance, model_regenerator
    from dispo.models import embedded

    model_dir = embedded.ensure("smollm2-135m")
    samples_file = _run_lmeval(tmp_path, model_dir)
    results_file = next(samples_file.parent.glob("results_*.json"))
    reported = json.loads(results_file.read_text())["results"]["tiny_arith"]
    lm_lines = [json.loads(x) for x in samples_file.read_text().splitlines() if x.strip()]

    run = import_logs([samples_file], arms=["smol"], model=str(model_dir), root=tmp_path / "runs")
    res = run.results
    # dispo's accuracy over the imported labels == lm-eval's own aggregate for that log
    assert res["metrics"]["smol"]["accuracy"]["value"] == pytest.approx(reported["exact_match,first-number"])
    assert res["metrics"]["smol"]["accuracy"]["n"] == len(lm_lines) == 4
    assert run.manifest["has_model"] is True and run.config["model"]["prompt_format"] == "raw"

    prov = arm_provenance(run)
    assert prov["smol"]["decoding"]["max_new_tokens"] == 8 and prov["smol"]["decoding"]["temperature"] == 0.0
    regenerate, why = model_regenerator(run, prov, progress=False)
    assert regenerate is not None, why
    regen = {s["id"]: s for s in regenerate("smol", prov["smol"]["decoding"], 0)}
    for line in lm_lines:
        r = regen[str(line["doc_id"])]
        # the raw prompt, greedy, 8 tokens: dispo's engine reproduces lm-eval's generation
        # (lm-eval cuts at its `until` strings; the imported domain applies the same cut)
        assert r["output"].split("\n")[0] == line["resps"][0][0], (r["output"], line["resps"])
        detail = r["scores"]["correct:import"]["detail"]
        assert detail["filtered_response"] == line["filtered_resps"][0]
        assert r["scores"]["correct:import"]["value"] == bool(line["exact_match"])
