"""The paper's instruments (prompts, judge rubrics), read at run time from its release.

protocol=paper must ask the student, the teachers and the judges exactly what the paper asked.
Those texts are the release's, not dispo's: they are never copied into this package. Each
instrument below is a *location* in a checkout of the release (`paper.repo=DIR`): a file plus
the Python name that holds the text (a module constant, or a variable inside a function).
The text is taken from the file's syntax tree without running it; f-string fields become
`{field}` placeholders. Every file read is hashed (sha256) so a run records exactly which
release text it used (`paper_instruments` in manifest.json).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

from dispo.core.errors import ConfigError

PREFIX = "paper:"
HOW_TO_FIX = (
    "pass paper.repo=DIR with a checkout of the paper's release "
    "(e.g. paper.repo=../shared/reference/tinman-dd) or set DISPO_PAPER_REPO"
)


@dataclass(frozen=True)
class Location:
    path: str  # file inside the release
    name: str  # constant (module level) or variable (inside `function`)
    function: str | None = None
    chatml_role: str | None = None  # keep only this role's turn of a raw ChatML string


INSTRUMENTS: dict[str, Location] = {
    # phase 0 (coding arc)
    "code.phase0_humaneval": Location("phase0_audit/evaluate.py", "chat_prompt", "eval_humaneval", "user"),
    "mcas.phase0_system": Location("phase0_audit/evaluate.py", "chat_prompt", "generate_response_for_mcas", "system"),
    "mcas.phase0_judge": Location("phase0_audit/evaluate.py", "judge_prompt", "judge_mcas_single"),
    # chef teacher chain (type 1 gold)
    "teacher.eager": Location("scripts/pipeline_type1_gold.py", "STAGE1_EAGER"),
    "teacher.deliberate": Location("scripts/pipeline_type1_gold.py", "STAGE2_DELIBERATE"),
    "teacher.adversarial": Location("scripts/pipeline_type1_gold.py", "STAGE3_ADVERSARIAL"),
    "teacher.synthesizer": Location("scripts/pipeline_type1_gold.py", "STAGE4_SYNTHESIZER"),
    # data types 2-4
    "data.failure_critique": Location("scripts/step11b_failure_traces.py", "CRITIQUE_PROMPT"),
    "data.failure_correction": Location("scripts/step11b_failure_traces.py", "CORRECTION_PROMPT"),
    "data.counterexample": Location("scripts/step12_counterexamples.py", "WRONG_RESPONSE_PROMPT"),
    "data.boundary_prompts": Location("scripts/step13_boundary_cases.py", "GENERATE_PROMPTS_SYSTEM"),
    "data.boundary_answer": Location("scripts/step13_boundary_cases.py", "DEFERRAL_RESPONSE_PROMPT"),
    "data.pair_judge": Location("scripts/clean_type3.py", "PROMPT"),
    # chef judges (arcs 2-3)
    "judge.rubric_v4.pass1_system": Location("eval/scripts/eval_judge_rubric_v4.py", "CERT_SYSTEM"),
    "judge.rubric_v4.pass1": Location("eval/scripts/eval_judge_rubric_v4.py", "CERT_TEMPLATE"),
    "judge.rubric_v4.pass2_system": Location("eval/scripts/eval_judge_rubric_v4.py", "SCORE_SYSTEM"),
    "judge.rubric_v4.pass2": Location("eval/scripts/eval_judge_rubric_v4.py", "SCORE_TEMPLATE"),
    "judge.coverage_system": Location("eval/scripts/v1_full_v2.py", "CLAIM_SYS"),
    "judge.coverage": Location("eval/scripts/v1_full_v2.py", "CLAIM_TEMPLATE"),
    "fresh.checklist_system": Location("eval/scripts/v1_full_v2.py", "CHECKLIST_GEN_SYS"),
    "fresh.checklist": Location("eval/scripts/v1_full_v2.py", "CHECKLIST_GEN_TEMPLATE"),
    # arc-2 verbal (ASSERT/HEDGE) judge: path_b2_qwen35_humble.py, the Qwen3.5 humble sweep whose 2x2
    # tables arc 2 reports. path_b2_tempering.py (Gemma) and baseline_crossmodel.py (the cohort
    # baseline) define the identical VERB_SYS/VERB_TPL (tests/judges/test_paper.py checks it).
    "judge.verbal_system": Location("eval/scripts/path_b2_qwen35_humble.py", "VERB_SYS"),
    "judge.verbal": Location("eval/scripts/path_b2_qwen35_humble.py", "VERB_TPL"),
    # arc-3 fresh scenario generator (v1_full.py:54-84): also dispo's chef pool generator
    "fresh.scenario_system": Location("eval/scripts/v1_full.py", "sys_msg", "gen_fresh_prompts"),
    "fresh.scenario": Location("eval/scripts/v1_full.py", "user", "gen_fresh_prompts"),
}


# Release data that is not a prompt string but a literal (read with ast.literal_eval, never run).
DATA: dict[str, Location] = {
    # type 4: the 6 boundary categories with their counts, descriptions and seed questions
    "data.boundary_categories": Location("scripts/step13_boundary_cases.py", "BOUNDARY_CATEGORIES"),
}


@dataclass(frozen=True)
class Instrument:
    name: str
    text: str
    path: str  # relative to the release root
    line: int  # where the text starts in that file
    sha256: str  # of the whole file

    def record(self) -> dict:
        return {"path": self.path, "line": self.line, "sha256": self.sha256, "chars": len(self.text)}


def is_paper_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def check_repo(repo: str | Path | None) -> Path:
    """The release root, or one ConfigError line saying what is wrong and how to fix it."""
    if repo in (None, "", "null", "None"):
        raise ConfigError(
            f"protocol=paper reads the paper's prompts from its release, but paper.repo is not set; {HOW_TO_FIX}"
        )
    root = Path(str(repo)).expanduser()
    if not root.is_dir():
        raise ConfigError(f"paper.repo={repo} is not a directory; {HOW_TO_FIX}")
    missing = sorted({loc.path for loc in INSTRUMENTS.values() if not (root / loc.path).is_file()})
    if missing:
        raise ConfigError(
            f"paper.repo={repo} is not the paper's release (missing {missing[0]}"
            f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}); {HOW_TO_FIX}"
        )
    return root


def _text_of(node: ast.AST, where: str) -> str:
    """A string expression's text: constants, implicit/explicit concatenation, f-strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            else:  # FormattedValue: keep the field as a placeholder, e.g. {prompt} or {response[:2000]}
                out.append("{" + ast.unparse(part.value) + "}")
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text_of(node.left, where) + _text_of(node.right, where)
    raise ConfigError(
        f"{where} is not a plain string in this release; dispo cannot read it (is paper.repo the right version?)"
    )


def _chatml_turn(text: str, role: str, where: str) -> str:
    start = f"<|im_start|>{role}\n"
    i = text.find(start)
    j = text.find("<|im_end|>", i + len(start)) if i >= 0 else -1
    if i < 0 or j < 0:
        raise ConfigError(f"{where} has no ChatML {role} turn in this release (is paper.repo the right version?)")
    return text[i + len(start) : j]


def _parse(root: Path, rel: str) -> tuple[bytes, ast.Module]:
    """(bytes, syntax tree) of a release file, never run; one ConfigError line if it is not Python."""
    raw = (root / rel).read_bytes()
    try:
        return raw, ast.parse(raw.decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"cannot parse {root / rel} ({type(e).__name__}); is paper.repo the paper's release?"
        ) from None


def read_instrument(repo: str | Path | None, name: str) -> Instrument:
    """Read one instrument (a key of INSTRUMENTS, with or without the 'paper:' prefix)."""
    key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if key not in INSTRUMENTS:
        raise ConfigError(f"unknown paper instrument '{key}'; valid: {', '.join(sorted(INSTRUMENTS))}")
    root = check_repo(repo)
    loc = INSTRUMENTS[key]
    raw, tree = _parse(root, loc.path)
    where = f"{loc.path}:{(loc.function + '.') if loc.function else ''}{loc.name}"
    body = tree.body
    if loc.function:
        fn = next(
            (
                n
                for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == loc.function
            ),
            None,
        )
        if fn is None:
            raise ConfigError(
                f"{loc.path} has no function {loc.function} in this release (is paper.repo the right version?)"
            )
        assign = next(
            (
                n
                for n in ast.walk(fn)
                if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == loc.name for t in n.targets)
            ),
            None,
        )
    else:
        assign = next(
            (
                n
                for n in body
                if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == loc.name for t in n.targets)
            ),
            None,
        )
    if assign is None:
        raise ConfigError(f"{where} not found in this release (is paper.repo the right version?)")
    text = _text_of(assign.value, where)
    if loc.chatml_role:
        text = _chatml_turn(text, loc.chatml_role, where)
    return Instrument(key, text, loc.path, assign.lineno, hashlib.sha256(raw).hexdigest())


def fill(template: str, **fields: str) -> str:
    """Substitute {field} placeholders by plain replacement (the texts contain other braces,
    e.g. JSON examples, that str.format would choke on)."""
    for k, v in fields.items():
        template = template.replace("{" + k + "}", v)
    return template


def record_used(run, instruments: list[Instrument]) -> None:
    """Add the instruments' files and hashes to the run manifest (merged with earlier ones)."""
    if run is None or not instruments:
        return
    have = dict(run.manifest.get("paper_instruments") or {})
    for ins in instruments:
        have[ins.name] = ins.record()
    run.record("paper_instruments", have)


def read_literal(repo: str | Path | None, name: str) -> tuple[object, Instrument]:
    """A module-level literal of the release (a key of DATA): (its value, an Instrument whose
    text is the value as JSON, for the manifest's sha256 record)."""
    import json

    if name not in DATA:
        raise ConfigError(f"unknown paper data '{name}'; valid: {', '.join(sorted(DATA))}")
    root = check_repo(repo)
    loc = DATA[name]
    raw, tree = _parse(root, loc.path)
    assign = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == loc.name for t in n.targets)
        ),
        None,
    )
    try:
        value = ast.literal_eval(assign.value) if assign is not None else None
    except ValueError:
        value = None
    if value is None:
        raise ConfigError(f"{loc.path}:{loc.name} is not a literal in this release (is paper.repo the right version?)")
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value, Instrument(name, text, loc.path, assign.lineno, hashlib.sha256(raw).hexdigest())
