"""protocol=paper: every setting is pinned against the paper's release files (the numbers are
read from the release here, so a wrong setting in conf/protocol/paper.yaml fails), the
release's instruments are read at run time with their sha256, and dispo's default stays its own.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dispo.core.config import compose_config
from dispo.core.errors import ConfigError
from tests.helpers.release import PAPER_REPO

ROOT = Path(__file__).resolve().parents[2]
REPO = PAPER_REPO
needs_repo = pytest.mark.skipif(not REPO.is_dir(), reason="the paper's release checkout is not here")


def release(path: str) -> str:
    return (REPO / path).read_text(encoding="utf-8")


def constants(path: str) -> dict:
    """Module-level NAME = <literal> assignments of a release script (read, never run)."""
    out = {}
    for node in ast.parse(release(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def number(path: str, pattern: str) -> float:
    m = re.search(pattern, release(path))
    assert m, f"{pattern} not in {path}: the release changed?"
    return float(m.group(1))


# ------------------------------------------------------------------ composition


def test_done_when_code_eval_under_paper_has_thinking_and_512_tokens():
    cfg = compose_config(["model=qwen3-0.6b", "domain=code", "protocol=paper"])
    assert cfg["model"]["chat_template_kwargs"]["enable_thinking"] is True
    assert cfg["decoding"]["max_new_tokens"] == 512 and cfg["limit"] is None
    assert cfg["domain"]["extract"] == "first_block" and cfg["domain"]["template"].startswith("paper:")
    assert cfg["protocol"]["applied"]["decoding.max_new_tokens"] == 512
    default = compose_config(["model=qwen3-0.6b", "domain=code"])
    assert default["model"]["chat_template_kwargs"]["enable_thinking"] is False
    assert "extract" not in default["domain"] and default["protocol"] == {"name": "default", "rules": [], "applied": {}}


def test_user_overrides_win_over_the_protocol_and_presets_still_shrink():
    cfg = compose_config(
        [
            "model=qwen3-0.6b",
            "domain=code",
            "protocol=paper",
            "decoding.max_new_tokens=1024",
            "model.chat_template_kwargs.enable_thinking=false",
            "limit=5",
        ]
    )
    assert cfg["decoding"]["max_new_tokens"] == 1024 and cfg["limit"] == 5
    assert cfg["model"]["chat_template_kwargs"]["enable_thinking"] is False
    assert "decoding.max_new_tokens" not in cfg["protocol"]["applied"]
    cfg = compose_config(["model=tiny-qwen3", "protocol=paper", "arc.preset=smoke"], base={"arc": "arc1"})
    assert cfg["arc"]["sft"]["r"] == 8 and cfg["arc"]["sft"]["dropout"] == 0.0  # preset sizes, paper's dropout


def test_qwen3_thinking_only_in_phase0_domains_and_not_for_other_families():
    assert (
        compose_config(["model=qwen3-0.6b", "domain=chef", "protocol=paper"])["model"]["chat_template_kwargs"][
            "enable_thinking"
        ]
        is False
    )
    assert (
        compose_config(["model=smollm2-135m", "domain=code", "protocol=paper"])["model"]["chat_template_kwargs"] == {}
    )


def test_unknown_protocol_lists_choices():
    with pytest.raises(ConfigError, match=r"unknown protocol 'papr'; valid choices: default, paper"):
        compose_config(["protocol=papr"])


# ------------------------------------------------------------------ pinned against the release


@needs_repo
def test_phase0_humaneval_and_mcas_settings_match_the_release():
    cfg = compose_config(["model=qwen3-0.6b", "domain=code", "protocol=paper"])
    assert cfg["decoding"]["max_new_tokens"] == number(
        "phase0_audit/humaneval_gguf_compare.py", r'"n_predict":\s*(\d+)'
    )
    assert cfg["decoding"]["max_new_tokens"] == number(
        "phase0_audit/evaluate.py", r"def generate_completion_hf\(.*max_new_tokens=(\d+)"
    )
    assert cfg["decoding"]["temperature"] == number("phase0_audit/humaneval_gguf_compare.py", r'"temperature":\s*(\d+)')
    mcas = compose_config(["model=qwen3-0.6b", "domain=mcas", "protocol=paper"])
    assert mcas["decoding"]["max_new_tokens"] == number(
        "phase0_audit/evaluate.py", r"generate_completion_hf\(model, tokenizer, chat_prompt, max_new_tokens=(\d+)\)"
    )
    assert mcas["system_prompt"] == "paper:mcas.phase0_system"
    assert mcas["model"]["chat_template_kwargs"]["enable_thinking"] is True
    # the raw ChatML had no empty think block: Qwen3 thinks by default
    assert "<think>" not in release("phase0_audit/evaluate.py")


@needs_repo
def test_arc1_sft_and_dpo_settings_match_the_release():
    a = compose_config(["model=qwen3-0.6b", "domain=chef", "protocol=paper"], base={"arc": "arc1"})["arc"]
    sft, dpo = "training/train_sft.py", "training/train_dpo.py"
    assert a["sft"]["dropout"] == number(sft, r"lora_dropout=([\d.]+)")
    assert a["sft"]["weight_decay"] == number(sft, r"weight_decay=([\d.]+)")
    assert a["sft"]["max_length"] == number(sft, r"MAX_LEN\s*=\s*(\d+)")
    assert a["sft"]["r"] == number(sft, r"\br=(\d+)") and a["sft"]["alpha"] == number(sft, r"lora_alpha=(\d+)")
    assert a["sft"]["lr"] == number(sft, r"learning_rate=([\d.e-]+)")
    assert a["sft"]["epochs"] == number(sft, r"num_train_epochs=(\d+)")
    assert a["sft"]["batch_size"] == number(sft, r"per_device_train_batch_size=(\d+)")
    assert a["sft"]["effective_batch"] == a["sft"]["batch_size"] * number(sft, r"gradient_accumulation_steps=(\d+)")
    assert a["sft"]["warmup_ratio"] == number(sft, r"warmup_ratio=([\d.]+)")
    # loss on the full text: a plain text field, no completion-only masking anywhere
    assert "dataset_text_field='text'" in release(sft) and "completion_only" not in release(sft)
    assert a["sft"]["loss_on"] == "full" and a["sft"]["modules"] == "attention"
    assert "finetune_mlp_modules=False" in release(sft)
    assert a["dpo"]["beta"] == number(dpo, r"beta=([\d.]+)")
    assert a["dpo"]["lr"] == number(dpo, r"learning_rate=([\d.e-]+)")
    assert a["dpo"]["epochs"] == number(dpo, r"num_train_epochs=(\d+)")
    assert a["dpo"]["max_length"] == number(dpo, r"max_length=(\d+)")
    assert a["dpo"]["effective_batch"] == number(dpo, r"per_device_train_batch_size=(\d+)") * number(
        dpo, r"gradient_accumulation_steps=(\d+)"
    )
    assert "ref_model=None" in release(dpo) and a["dpo"]["reference"] == "base"


@needs_repo
def test_gemma_is_4bit_in_arcs_1_and_3_only_for_hub_weights():
    assert "load_in_4bit=True" in release("training/train_sft.py")
    for arc in ("arc1", "arc3"):
        assert (
            compose_config(["model=gemma4-e2b", "protocol=paper"], base={"arc": arc})["model"]["quantization"] == "4bit"
        )
    assert "quantization" not in compose_config(["model=gemma4-e2b", "protocol=paper"], base={"arc": "arc2"})["model"]
    assert "quantization" not in compose_config(["model=tiny-gemma4", "protocol=paper"], base={"arc": "arc1"})["model"]


@needs_repo
def test_arc2_settings_match_the_release():
    c = constants("eval/scripts/path_b2_qwen35_humble.py")
    cfg = compose_config(["model=qwen3.5-0.8b", "protocol=paper"], base={"arc": "arc2"})
    d, a = cfg["decoding"], cfg["arc"]
    assert (d["temperature"], d["top_p"], d["top_k"]) == (c["GEN_TEMP"], c["GEN_TOP_P"], c["GEN_TOP_K"])
    assert d["max_new_tokens"] == c["MAX_NEW"] and a["top_k"] == c["TOP_K"] and a["lambdas"] == c["LAMBDAS"]
    assert cfg["model"]["chat_template_kwargs"]["enable_thinking"] is c["ENABLE_THINKING"]
    # script != text: the presence penalty is defined but never passed to generate()
    gen_call = release("eval/scripts/path_b2_qwen35_humble.py").split("model.generate(", 1)[1].split(")", 1)[0]
    assert c["GEN_PRESENCE_PENALTY"] == 2.0 and "presence" not in gen_call and "repetition_penalty=1.0" in gen_call
    assert d["presence_penalty"] == 0.0 and d["repetition_penalty"] == 1.0
    assert a["last_n_tokens"] == constants("eval/scripts/path_b_attribution.py")["LAST_N"]
    assert "1000 + it['i']" in release("eval/scripts/path_b2_qwen35_humble.py") and cfg["seed"] == 1000
    assert "s + 1000" in release("eval/scripts/path_b2_qwen35_humble_rep.py") and a["replicate"]["seeds"] == [2000]
    assert a["method"] == "signed_d" and a["cohort_source"] == "paper"
    assert "reverse=True" in release("eval/scripts/path_b_attribution.py")  # ranked by signed d, descending


@needs_repo
def test_paper_teacher_set_names_the_scripts_teachers_and_temperatures():
    text = (ROOT / "dispo/conf/arc/teachers/paper.yaml").read_text()
    assert "FILL IN" not in text
    t = yaml.safe_load(text)
    c = constants("scripts/pipeline_type1_gold.py")
    want = {
        "eager": ("KIMI_MODEL", "KIMI_TEMPERATURE"),
        "deliberate": ("DEEPSEEK_MODEL", "DEEPSEEK_TEMPERATURE"),
        "adversarial": ("MINIMAX_MODEL", "MINIMAX_TEMPERATURE"),
        "synthesizer": ("QWEN_MODEL", "QWEN_TEMPERATURE"),
    }
    for stage, (model, temp) in want.items():
        s = t["stages"][stage]
        # OpenRouter ids; the script's own id may carry a routing suffix (":free") or omit the org (kimi)
        assert c[model].split(":")[0].split("/")[-1] == s["model"].split("/")[-1], stage
        assert s["decoding"]["temperature"] == c[temp], stage
        assert s["prompt"] == f"paper:teacher.{stage}"
    assert t["stages"]["adversarial"]["strip_think"] is True and t["topology"] == "paper"
    assert t["stages"]["eager"]["extra"] == c["KIMI_EXTRA_BODY"]
    facts = yaml.safe_load((ROOT / "dispo/conf/protocol/paper.yaml").read_text())["facts"]["chef_arc1"]["data_types"]
    assert (
        facts["counterexample"]["temperature"]
        == constants("scripts/step12_counterexamples.py")["MINIMAX_TEMPERATURE"]
        == 1.2
    )
    s11 = constants("scripts/step11b_failure_traces.py")
    assert facts["failure_trace"]["critique"]["temperature"] == s11["DEEPSEEK_TEMPERATURE"]
    assert facts["failure_trace"]["rewrite"]["temperature"] == s11["QWEN_TEMPERATURE"]
    s13 = constants("scripts/step13_boundary_cases.py")
    assert facts["boundary"]["prompts"]["temperature"] == s13["DEEPSEEK_TEMPERATURE"]
    assert facts["boundary"]["answers"]["temperature"] == s13["KIMI_TEMPERATURE"]
    code = yaml.safe_load((ROOT / "dispo/conf/arc/teachers/paper_code.yaml").read_text())
    tex = release("paper/dd-paper-arxiv-v3.tex")
    assert "Eager stage (Kimi~K2.5" in tex and "Deliberate stage (GLM-5" in tex and "Synthesizer stage (GLM-5)" in tex
    assert [
        code["stages"][s]["model"].split("/")[-1] for s in ("eager", "deliberate", "adversarial", "synthesizer")
    ] == ["kimi-k2.5", "glm-5", "minimax-m2.7", "glm-5"]


# ------------------------------------------------------------------ instruments from the release


@needs_repo
def test_instruments_are_read_from_the_release_with_the_files_sha256():
    from dispo.core.paper_source import INSTRUMENTS, read_instrument

    for name, loc in INSTRUMENTS.items():
        ins = read_instrument(REPO, name)
        assert ins.sha256 == hashlib.sha256((REPO / loc.path).read_bytes()).hexdigest()
        # the text's opening words are in that file (string pieces may be split across source lines)
        assert len(ins.text) > 40 and ins.text.strip()[:30] in release(loc.path)
    he = read_instrument(REPO, "paper:code.phase0_humaneval").text
    assert "Return ONLY the complete function" in he and "{prompt}" in he and "<|im_start|>" not in he


def test_dispo_does_not_ship_the_papers_prompt_text():
    needles = (
        "Return ONLY the complete function",
        "You are a thoughtful coding assistant that plans carefully",
        "You are an adversarial culinary critic",
        "INTENTIONALLY WRONG culinary responses",
    )
    for p in (ROOT / "dispo").rglob("*"):
        if p.is_file() and p.suffix in {".py", ".txt", ".yaml", ".md", ".json"}:
            text = p.read_text(encoding="utf-8", errors="ignore")
            assert not any(n in text for n in needles), p


@needs_repo
def test_missing_or_wrong_repo_is_one_line(tmp_path):
    from dispo.core.paper_source import read_instrument

    for repo, msg in (
        (None, "paper.repo is not set"),
        (tmp_path / "nope", "is not a directory"),
        (tmp_path, "is not the paper's release"),
    ):
        with pytest.raises(ConfigError, match=msg) as e:
            read_instrument(repo, "teacher.eager")
        assert "\n" not in str(e.value) and "paper.repo=" in str(e.value)


@needs_repo
def test_paper_code_items_use_the_release_prompt_and_paper_extraction():
    from dispo.domains.code import CodeDomain, build_program_paper
    from dispo.domains.code_extract import extract_first_block

    dom = CodeDomain(template="paper:code.phase0_humaneval", extract="first_block", paper_repo=str(REPO))
    it = dom.items("eval")[0]
    assert it.prompt.startswith("Complete the following Python function. Return ONLY") and it.prompt.endswith('"""\n\n')
    assert len(dom.items("eval")) == 164 and dom.instruments[0].path == "phase0_audit/evaluate.py"
    # the first fenced block wins, even one written inside <think> (how truncation could pass or fail)
    out = "<think>\n```python\ndef f():\n    return 1\n```\n</think>\n```python\ndef f():\n    return 2\n```"
    assert extract_first_block(out, it).code == "def f():\n    return 1"
    assert extract_first_block("Sure.\ndef f(x):\n    return x\n\nprint(f(1))", it).code == "def f(x):\n    return x"
    ep = it.gold["entry_point"]
    prog = build_program_paper(it, f"def {ep}(numbers, threshold):\n    return True", "M")
    assert not prog.startswith("from typing")  # a full function runs without the prompt's imports, as in the paper
    with pytest.raises(ConfigError, match="domain.extract"):
        CodeDomain(extract="ast")


@needs_repo
def test_eval_records_the_release_files_used_in_the_manifest(tmp_path):
    from dispo.core.runs import Run
    from dispo.evaluation.evaluate import record_domain_instruments, resolve_paper_text

    cfg = compose_config(
        ["model=tiny-qwen3", "domain=mcas", "protocol=paper", f"paper.repo={REPO}", f"output_dir={tmp_path}"]
    )
    run = Run.create("eval", cfg, "tiny-qwen3", root=tmp_path)
    text = resolve_paper_text(cfg["system_prompt"], cfg, run)
    assert text.startswith("You are a thoughtful coding assistant")
    from dispo.domains.code import CodeDomain

    dom = CodeDomain(template="paper:code.phase0_humaneval", extract="first_block", paper_repo=str(REPO))
    dom.items("eval", 1)
    record_domain_instruments(run, dom)
    rec = json.loads((run.dir / "manifest.json").read_text())["paper_instruments"]
    sha = hashlib.sha256((REPO / "phase0_audit/evaluate.py").read_bytes()).hexdigest()
    assert rec["mcas.phase0_system"]["sha256"] == rec["code.phase0_humaneval"]["sha256"] == sha
    assert rec["code.phase0_humaneval"]["path"] == "phase0_audit/evaluate.py"


# ------------------------------------------------------------------ teachers, arc 2, training, 4-bit


@needs_repo
def test_paper_teacher_topology_prompts_and_think_stripping():
    from dispo.arcs.arc1.teachers import TeacherPipeline
    from dispo.core.types import Item

    seen: dict[str, list] = {}

    class Fake:
        def __init__(self, stage):
            self.stage = stage

        def generate(self, chats, ids):
            seen[self.stage] = chats
            return [
                {"output": f"<think>hidden</think>{self.stage.upper()}-OUT", "finish_reason": "stop"} for _ in chats
            ]

        def describe(self):
            return {"backend": "fake", "model": self.stage}

    tcfg = yaml.safe_load((ROOT / "dispo/conf/arc/teachers/paper.yaml").read_text())
    tcfg["paper_repo"] = str(REPO)
    pipe = TeacherPipeline.from_config(tcfg, teacher_factory=lambda s, c, d: Fake(s))
    out = pipe.run([Item(id="q1", prompt="My hollandaise split. Why?", domain="chef")])
    adv = seen["adversarial"][0]
    assert len(adv) == 1 and adv[0]["role"] == "user"  # the release's template, no system turn
    assert "My hollandaise split. Why?" in adv[0]["content"] and "EAGER-OUT" in adv[0]["content"]
    assert "DELIBERATE-OUT" not in adv[0]["content"]  # stages 2 and 3 both see only stage 1
    synth = seen["synthesizer"][0][0]["content"]
    assert all(x in synth for x in ("EAGER-OUT", "DELIBERATE-OUT", "ADVERSARIAL-OUT"))
    assert "hidden" not in out[0]["stages"]["adversarial"] and "hidden" in out[0]["stages"]["deliberate"]
    assert {i.name for i in pipe.instruments} == {
        f"teacher.{s}" for s in ("eager", "deliberate", "adversarial", "synthesizer")
    }


def _scored(c, v, sv=None):
    s = {"correct:x": {"value": c, "status": "ok"}, "verbal:lexical": {"value": v, "status": "ok"}}
    if sv is not None:
        s["rubric:lexical"] = {"value": {"self_verification": sv}, "status": "ok"}
    return s


def test_paper_cohorts_and_the_2x2_outcome():
    import dispo.arcs.arc2.recipe as A

    rows = [
        ("a", True, "assert", 5),
        ("b", False, "assert", 1),
        ("c", True, "hedge", 3),
        ("d", False, "hedge", 2),
        ("e", False, "assert", 4),
    ]
    samples = [{"id": i, "scores": _scored(c, v, sv)} for i, c, v, sv in rows]
    lab = A.cohort_labels(samples, "humble", source="paper")
    assert list(lab["y"]) == [0, 1, -1, -1, 1] and lab["names"][0].startswith("wrong-asserted")
    lab = A.cohort_labels(samples, "adversarial", source="paper")
    assert list(lab["y"]) == [1, 0, -1, 0, 1]
    with pytest.raises(ConfigError, match="humble or adversarial"):
        A.cohort_labels(samples, "deliberate", source="paper")
    o = A.outcome_2x2(samples)
    assert o["counts"] == {"cr": 1, "hr": 1, "cw": 2, "hw": 1}
    assert o["hallucination_rate"] == pytest.approx(2 / 3) and o["assertion_asymmetry"] == pytest.approx(2 / 3 - 1 / 2)
    only_right = A.outcome_2x2(samples[:1])
    assert (
        only_right["hallucination_rate"] is None and "no wrong answers" in only_right["undefined"]["hallucination_rate"]
    )


def test_signed_d_ranks_by_sign_not_magnitude():
    from dispo.arcs.arc2.attribution import HeadActivations, rank_heads

    rng = np.random.default_rng(0)
    n = 40
    a = np.arange(n) < 20
    norms = rng.normal(1.0, 0.1, size=(n, 3))
    norms[a, 0] += 0.5  # head 0: larger in A  (d > 0)
    norms[a, 1] -= 0.8  # head 1: much smaller in A (|d| largest, d < 0)
    vecs = rng.normal(size=(n, 3, 4))
    acts = HeadActivations(
        layers=[0], n_heads={0: 3}, head_dim={0: 4}, norms={0: norms}, vecs={0: vecs}, n_tokens=np.full(n, 8)
    )
    signed = rank_heads(acts, a, ~a, method="signed_d")
    mag = rank_heads(acts, a, ~a, method="magnitude")
    assert [r["head"] for r in signed.rows][0] == 0 and [r["head"] for r in signed.rows][-1] == 1
    assert [r["head"] for r in mag.rows][0] == 1
    assert signed.rows[0]["score"] == signed.rows[0]["d"] > 0 > signed.rows[-1]["score"]


def test_sft_loss_on_full_trains_on_every_token():
    from dispo.arcs.arc1.training import build_sft_example
    from dispo.models.loading import load_model

    lm = load_model("tiny-llama")
    msgs = [{"role": "user", "content": "Fix my sauce?"}, {"role": "assistant", "content": "Whisk in butter."}]
    comp = build_sft_example(lm, msgs)
    full = build_sft_example(lm, msgs, loss_on="full")
    assert comp["input_ids"] == full["input_ids"]
    assert full["labels"] == full["input_ids"] and comp["labels"][: comp["n_prompt"]] == [-100] * comp["n_prompt"]
    with pytest.raises(ConfigError, match="loss_on"):
        build_sft_example(lm, msgs, loss_on="prompt")


def test_4bit_on_cpu_is_one_clear_line():
    from dispo.models.loading import load_model

    spec = {**compose_config(["model=qwen3-0.6b"])["model"], "quantization": "4bit"}
    with pytest.raises(ConfigError, match="needs a CUDA GPU") as e:
        load_model(spec, device="cpu")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="valid: null"):
        load_model({**spec, "quantization": "3bit"}, device="cpu")


# ------------------------------------------------------------------ the two commands


def _cli(*args, env=None):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dispo.cli", *args], capture_output=True, text=True, env=e, cwd=ROOT, timeout=300
    )


def test_dispo_config_prints_the_composed_yaml():
    p = _cli("config", "eval", "model=qwen3-0.6b", "domain=code", "protocol=paper")
    assert p.returncode == 0, p.stderr
    cfg = yaml.safe_load(p.stdout)
    assert cfg["model"]["chat_template_kwargs"]["enable_thinking"] is True and cfg["decoding"]["max_new_tokens"] == 512
    p = _cli("config", "train", "arc1", "model=qwen3-0.6b", "protocol=paper")
    assert p.returncode == 0 and yaml.safe_load(p.stdout)["arc"]["sft"]["weight_decay"] == 0.01
    bad = _cli("config", "train", "arc9")
    assert bad.returncode == 2 and "unknown arc 'arc9'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_dispo_items_fresh_shares_no_checklist_claim_with_eval():
    def items(split):
        p = _cli("items", "domain=chef", f"split={split}", "--json")
        assert p.returncode == 0, p.stderr
        return [json.loads(line) for line in p.stdout.splitlines()]

    fresh, ev = items("fresh"), items("eval")
    assert fresh and ev and all(r["fact_id"] and r["checklist"] for r in fresh + ev)
    claims = lambda rows: {c.strip().lower() for r in rows for c in r["checklist"]}  # noqa: E731
    assert not claims(fresh) & claims(ev)
    assert not {r["fact_id"] for r in fresh} & {r["fact_id"] for r in ev}
    code = _cli("items", "domain=code", "limit=2", "--json")
    rows = [json.loads(line) for line in code.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["HumanEval/0", "HumanEval/1"] and all(
        "check(" in r["tests"] or "def check" in r["tests"] for r in rows
    )
