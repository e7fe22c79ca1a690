"""Importing lm-evaluation-harness and inspect_ai logs, and exporting runs back.

The lm-eval fixture is real lm-eval 0.4.13 output (tests/data/interop/README.md); the inspect
logs are written here by inspect_ai itself with its mockllm provider."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from dispo.core.errors import ConfigError, DispoError, InputFileError

DATA = Path(__file__).parents[1] / "data" / "interop"
SAMPLES = next(DATA.glob("samples_tiny_arith_*.jsonl"))
RESULTS = next(DATA.glob("results_*.json"))


def lm_lines(path: Path = SAMPLES) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def copy_log(tmp_path: Path, name: str, edit=None) -> Path:
    """A copy of the fixture (samples + its results file) in its own dir, optionally edited per line."""
    d = tmp_path / name
    d.mkdir()
    shutil.copy(RESULTS, d / RESULTS.name)
    lines = lm_lines()
    if edit:
        lines = [edit(dict(x)) for x in lines]
    p = d / SAMPLES.name
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return p


# ----------------------------------------------------------------- lm-eval


def test_lmeval_fields_map_onto_records():
    from dispo.evaluation.import_lmeval import read_lmeval

    imp = read_lmeval(SAMPLES)
    raw = lm_lines()
    assert imp.task == "tiny_arith" and [r["id"] for r in imp.records] == [str(x["doc_id"]) for x in raw]
    r0, x0 = imp.records[0], raw[0]
    assert r0["prompt"] == x0["arguments"]["gen_args_0"]["arg_0"] == "Question: What is 2 plus 2?\nAnswer:"
    assert r0["output"] == x0["resps"][0][0] and r0["meta"]["filtered_response"] == x0["filtered_resps"][0]
    assert [r["scores"]["correct:import"]["value"] for r in imp.records] == [bool(x["exact_match"]) for x in raw]
    assert imp.records[1]["meta"]["labels"] == {"exact_match": 0.0}
    # gen kwargs {"until": ["\n"], "max_gen_toks": 8, "do_sample": false} -> greedy, 8 tokens, stop "\n"
    assert imp.decoding == {"max_new_tokens": 8, "temperature": 0.0}
    assert imp.provenance["stop_strings"] == ["\n"] and imp.provenance["filter"] == "first-number"
    assert imp.model == "/root/.cache/dispo/models/smollm2-135m"  # model_args.pretrained in results_*.json
    assert imp.provenance["results_file"].endswith(RESULTS.name)


def test_accuracy_equals_lmeval_reported(tmp_path):
    from dispo.evaluation.import_run import import_logs

    run = import_logs([SAMPLES], arms=["smol"], root=tmp_path)
    reported = json.loads(RESULTS.read_text())["results"]["tiny_arith"]["exact_match,first-number"]
    assert run.results["metrics"]["smol"]["accuracy"]["value"] == pytest.approx(reported)
    assert run.manifest["has_model"] is False and "model=" in run.manifest["why_no_model"]


def test_two_logs_become_paired_arms_with_a_claim(tmp_path):
    from dispo.evaluation.import_run import import_logs

    def all_right(x):
        x["exact_match"] = 1.0
        return x

    base, treat = copy_log(tmp_path, "a"), copy_log(tmp_path, "b", all_right)
    run = import_logs([base, treat], arms=["base", "dd"], root=tmp_path / "runs")
    (claim,) = [c for c in run.results["claims"] if c["metric"] == "accuracy"]
    base_acc = sum(x["exact_match"] for x in lm_lines()) / 4
    assert (claim["arm"], claim["baseline"]) == ("dd", "base")
    assert claim["delta"] == pytest.approx(1.0 - base_acc)
    assert claim["n_pairs"] == 4


def test_logs_of_different_documents_do_not_pair(tmp_path):
    from dispo.evaluation.import_run import import_logs

    def other_doc(x):
        if x["doc_id"] == 2:
            x["doc_hash"] = "0" * 64
        return x

    with pytest.raises(InputFileError, match=r"document 2 differs .*doc_hash") as e:
        import_logs([copy_log(tmp_path, "a"), copy_log(tmp_path, "b", other_doc)], arms=["a", "b"], root=tmp_path / "r")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "r").exists()  # nothing written


def test_several_filters_need_a_choice(tmp_path):
    from dispo.evaluation.import_lmeval import read_lmeval

    p = tmp_path / SAMPLES.name
    lines = lm_lines()
    strict = [{**x, "filter": "strict", "exact_match": 0.0} for x in lines]
    p.write_text("".join(json.dumps(x) + "\n" for x in lines + strict))
    with pytest.raises(
        InputFileError, match="several lm-eval filters \\(first-number, strict\\); pick one with --filter"
    ):
        read_lmeval(p)
    assert all(r["scores"]["correct:import"]["value"] is False for r in read_lmeval(p, filter_name="strict").records)
    with pytest.raises(InputFileError, match="no per-sample metric 'acc'"):
        read_lmeval(p, metric="acc", filter_name="strict")


def test_loglikelihood_task_imports_but_says_it_cannot_regenerate(tmp_path):
    from dispo.evaluation.import_lmeval import read_lmeval

    p = tmp_path / "samples_mc_2026-01-01T00-00-00.000001.jsonl"
    line = {
        "doc_id": 0,
        "doc": {"q": "x"},
        "target": "1",
        "arguments": {
            "gen_args_0": {"arg_0": "Q: x\nA:", "arg_1": " yes"},
            "gen_args_1": {"arg_0": "Q: x\nA:", "arg_1": " no"},
        },
        "resps": [[["-1.2", "False"]], [["-0.3", "True"]]],
        "filtered_resps": [["-1.2", "False"], ["-0.3", "True"]],
        "filter": "none",
        "metrics": ["acc"],
        "doc_hash": "h",
        "prompt_hash": "p",
        "target_hash": "t",
        "acc": 1.0,
    }
    p.write_text(json.dumps(line) + "\n")
    imp = read_lmeval(p)
    assert imp.records[0]["output_missing"] is True and imp.records[0]["scores"]["correct:import"]["value"] is True
    assert "loglikelihood" in imp.why_not_regenerable


def test_format_detection(tmp_path):
    from dispo.evaluation.import_run import detect_format

    assert detect_format(SAMPLES) == "lm-eval"
    own = tmp_path / "mine.jsonl"
    own.write_text('{"id": 1, "correct": true}\n')
    assert detect_format(own) == "jsonl"
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\n")
    with pytest.raises(InputFileError, match="cannot tell the format.*--format lm-eval\\|inspect\\|jsonl"):
        detect_format(odd)


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from dispo.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["dispo", *args])
        with pytest.raises(SystemExit) as e:
            main()
        return e.value.code, capsys.readouterr().err.strip()

    code, err = run("import", str(SAMPLES), str(SAMPLES), "--arm", "a", "--arm", "a")
    assert code == 2 and err.count("\n") == 0 and "arm names must differ" in err
    code, err = run("import", str(SAMPLES), "model=no-such-model")
    assert code == 2 and "model=no-such-model" in err
    code, err = run("import", str(SAMPLES), "--arm", "a", "colour=red")
    assert code == 2 and "unknown setting(s) colour" in err


# ----------------------------------------------------------------- inspect_ai


def write_inspect_log(log_dir: Path, completions: list[str], name: str = "arith") -> Path:
    """A real inspect_ai log: 4 questions, mockllm answering `completions`, two scorers."""
    pytest.importorskip("inspect_ai")
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes, match
    from inspect_ai.solver import generate

    outs = []
    for c in completions:
        o = ModelOutput.from_content(model="mockllm/model", content=c)
        # usage given, so mockllm does not fetch a tiktoken encoding (offline)
        o.usage = ModelUsage(input_tokens=5, output_tokens=len(c), total_tokens=5 + len(c))
        outs.append(o)
    ds = [Sample(id=f"q{i}", input=f"What is {i}+{i}?", target=str(2 * i)) for i in range(1, 5)]
    task = Task(dataset=ds, solver=[generate()], scorer=[match(), includes()], name=name)
    (log,) = eval(
        task,
        model=get_model("mockllm/model", custom_outputs=outs),
        log_dir=str(log_dir),
        display="none",
        temperature=0.0,
        max_tokens=32,
        seed=3,
    )
    assert log.status == "success", log.error
    return Path(log.location)


@pytest.fixture(scope="module")
def inspect_logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    return (
        write_inspect_log(d / "base", ["2", "5", "6", "9"]),  # q1, q3 right
        write_inspect_log(d / "dd", ["2", "4", "6", "8"]),
    )  # all right


def test_inspect_log_imports_with_inspects_own_numbers(inspect_logs, tmp_path):
    from inspect_ai.log import read_eval_log

    from dispo.evaluation.import_run import detect_format, import_logs

    base, _ = inspect_logs
    assert detect_format(base) == "inspect"
    run = import_logs([base], arms=["base"], root=tmp_path)
    reported = {s.name: s.metrics["accuracy"].value for s in read_eval_log(str(base)).results.scores}
    acc = run.results["metrics"]["base"]["accuracy"]
    assert acc["value"] == pytest.approx(reported["match"]) and acc["scorers"] == ["import.inspect/inspect/match"]
    s = {r["id"]: r for r in run.read_samples("base")}
    assert s["q2"]["output"] == "5" and s["q2"]["prompt"] == "What is 2+2?" and s["q2"]["meta"]["target"] == "4"
    assert s["q2"]["finish_reason"] == "stop" and s["q2"]["n_tokens"] == 1 and s["q2"]["seed"] == 3
    assert s["q2"]["decoding"] == {"max_new_tokens": 32, "temperature": 0.0}
    assert s["q2"]["meta"]["labels"] == {"match": "I", "includes": "I"}


def test_two_inspect_logs_pair_and_falsify_says_what_it_cannot_check(inspect_logs, tmp_path):
    from dispo.evaluation.import_run import import_logs
    from dispo.falsify.run import falsify_run

    run = import_logs(list(inspect_logs), arms=["base", "dd"], root=tmp_path)
    (claim,) = [c for c in run.results["claims"] if c["metric"] == "accuracy"]
    assert claim["delta"] == pytest.approx(1.0 - 0.5) and claim["n_pairs"] == 4
    out = falsify_run(run.dir, progress=False)
    (c,) = [c for c in out["claims"] if c["metric"] == "accuracy"]
    assert out["has_model"] is False
    seed = c["checks"]["seed_variance"]
    assert seed["status"] == "skipped" and "needs the model" in seed["reason"]
    assert c["verdict"] != "SURVIVES"


def test_inspect_missing_gives_install_hint(monkeypatch, tmp_path):
    import builtins

    from dispo.evaluation.import_inspect import read_inspect

    real = builtins.__import__

    def no_inspect(name, *a, **k):
        if name.startswith("inspect_ai"):
            raise ImportError(name)
        return real(name, *a, **k)

    p = tmp_path / "x.eval"
    p.write_bytes(b"PK")
    monkeypatch.setattr(builtins, "__import__", no_inspect)
    with pytest.raises(DispoError, match=r"pip install 'dispo\[inspect\]'"):
        read_inspect(p)


def test_corrupt_inspect_log_is_one_line(tmp_path):
    pytest.importorskip("inspect_ai")
    from dispo.evaluation.import_inspect import read_inspect

    p = tmp_path / "broken.eval"
    p.write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match="inspect_ai could not read this log") as e:
        read_inspect(p)
    assert "\n" not in str(e.value)


def test_regenerated_output_that_cannot_be_rescored_keeps_the_reason(tmp_path):
    """The task config names a dataset file that does not exist: the imported domain cannot
    rebuild the lm-eval task, and the regenerated sample says so under correct:import
    (unscored, with the reason) instead of losing the key."""
    pytest.importorskip("lm_eval")
    from dispo.core.runs import Run
    from dispo.evaluation.eval_run import make_domain
    from dispo.evaluation.evaluate import content_keys
    from dispo.evaluation.import_run import import_logs

    log = copy_log(tmp_path, "log")
    res = log.with_name(RESULTS.name)
    missing = tmp_path / "no-such-dir" / "docs.jsonl"
    res.write_text(res.read_text().replace("/tmp/interop/lmtask/docs.jsonl", str(missing)))
    assert str(missing) in res.read_text()
    run = import_logs([log], arms=["smol"], model="smollm2-135m", root=tmp_path / "runs")
    assert run.manifest["has_model"] is True
    domain = make_domain(Run.open(run.dir).config)
    item = domain.items()[0]
    assert item.prompt == lm_lines()[0]["arguments"]["gen_args_0"]["arg_0"]
    keys = content_keys(domain.content_score(item, " 4\n"))
    sc = keys["correct:import"]
    assert sc["status"] == "unscored" and sc["value"] is None
    assert "lm-eval could not rebuild task 'tiny_arith'" in sc["reason"] and "\n" not in sc["reason"]


# ----------------------------------------------------------------- export


def test_export_csv_parquet_and_lmeval_round_trip(tmp_path):
    import pandas as pd

    from dispo.evaluation.import_lmeval import read_lmeval
    from dispo.evaluation.import_run import import_logs
    from dispo.reporting.export import export_run

    run = import_logs([SAMPLES], arms=["smol"], root=tmp_path / "runs")
    samples = run.read_samples("smol")
    (csv,) = export_run(run.dir, "csv", out=tmp_path / "x.csv")
    df = pd.read_csv(csv, dtype={"id": str}, keep_default_na=False)
    assert list(df["id"]) == [s["id"] for s in samples]
    assert list(df["output"]) == [s["output"] for s in samples]
    assert [str(v) for v in df["correct:import"]] == [str(s["scores"]["correct:import"]["value"]) for s in samples]
    (pq,) = export_run(run.dir, "parquet", out=tmp_path / "x.parquet")
    dq = pd.read_parquet(pq)
    assert list(dq["correct:import"]) == [s["scores"]["correct:import"]["value"] for s in samples]

    files = export_run(run.dir, "lm-eval", out=tmp_path / "lm")
    back = read_lmeval(next(f for f in files if f.name.startswith("samples_")))
    assert [r["id"] for r in back.records] == [s["id"] for s in samples]
    assert [r["scores"]["correct:import"]["value"] for r in back.records] == [
        s["scores"]["correct:import"]["value"] for s in samples
    ]
    res = json.loads(next(f for f in files if f.name.startswith("results_")).read_text())
    orig = json.loads(RESULTS.read_text())["results"]["tiny_arith"]
    assert res["results"]["tiny_arith"]["exact_match,first-number"] == pytest.approx(orig["exact_match,first-number"])
    assert res["results"]["tiny_arith"]["exact_match_stderr,first-number"] == pytest.approx(
        orig["exact_match_stderr,first-number"]
    )


def test_export_errors(tmp_path):
    from dispo.evaluation.import_run import import_logs
    from dispo.reporting.export import export_run

    run = import_logs([SAMPLES], arms=["smol"], root=tmp_path)
    with pytest.raises(ConfigError, match="--format must be one of lm-eval, csv, parquet"):
        export_run(run.dir, "xlsx")
    with pytest.raises(ConfigError, match="no arm nope"):
        export_run(run.dir, "csv", arms=["nope"])
