"""Import external results (one JSON object per line) as dispo sample records.

A line needs an id and may carry a prompt, a response and labels; the labels become scores
with source ``import`` so every metric and claim works on them as on dispo's own runs::

    {"id": "q1", "prompt": "...", "response": "...", "finish_reason": "stop",
     "n_tokens": 212, "correct": true, "coverage": 0.6, "verbal": "assert"}

Field aliases let the paper's released files import unchanged:

    id       <- id | task_id | prompt_i | i
    prompt   <- prompt | topic
    response <- response | output | completion   (absent: output "" and output_missing)
    kind     <- kind | type                       (mcas tricky|straightforward, in meta)

Labels and the score each becomes:

    correct  (bool)              -> correct:import
    passed   (bool)              -> correct:import   (HumanEval-style name for the same label)
    coverage (number in 0..1)    -> coverage:import; and correct:import = coverage >= 0.5
                                    when the line has no explicit correct/passed
    verbal   ("assert"|"hedge")  -> verbal:import
    score    (int 0|1|2)         -> mcas:import

A label that is ``null`` becomes an *unscored* score (counted as unscored, never as 0).

``field_map`` ({target: source field}) picks the column for a target, e.g.
``{"passed": "baseline_passed"}`` to read one arm of a two-arm file. A mapped field must be
present on every line.

Any malformed input raises InputFileError naming file:line and field, and nothing is
returned: bad JSON or UTF-8, a line that is not an object, a missing or duplicate id, a
label of the wrong type or value, a line over 10 MB, an empty file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError, InputFileError
from dispo.core.types import Sample, Score, ScoreKey
from dispo.stats.metrics import correct_at

MAX_LINE_BYTES = 10 * 1024 * 1024
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
SOURCE = "import"
VERSION = "import-v1"  # the label's field name is in detail["field"]

ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "task_id", "prompt_i", "i"),
    "prompt": ("prompt", "topic"),
    "response": ("response", "output", "completion"),
    "finish_reason": ("finish_reason",),
    "n_tokens": ("n_tokens",),
    "kind": ("kind", "type"),
    "model": ("model",),
    "correct": ("correct",),
    "passed": ("passed",),
    "coverage": ("coverage",),
    "verbal": ("verbal",),
    "score": ("score",),
}
TARGETS = tuple(ALIASES)


def read_arm_jsonl(path: str | Path, field_map: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Read one arm's results from a JSONL file into sample records (see module doc).

    Returns records shaped like ``samples/<arm>.jsonl`` lines: id, prompt, messages, output,
    finish_reason (None if unknown), n_tokens (None if unknown), decoding ({}), seed (None),
    scores ({"<task>:import": Score.to_json()}), meta (kind, model, source file and line),
    plus ``output_missing: True`` when the line had no response.
    """
    fmap = _check_field_map(field_map)
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; pass the path of a .jsonl results file")
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with p.open("rb") as fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            lineno += 1
            # readline stops after MAX+1 bytes: a full-size chunk without its newline is a
            # line over the limit (read no further into it).
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise InputFileError(f"{p}:{lineno}: line longer than 10 MB; split or trim the record")
            obj = _parse_line(p, lineno, raw)
            if obj is None:
                continue
            rec = _to_record(p, lineno, obj, fmap)
            if rec["id"] in seen:
                raise InputFileError(
                    f"{p}:{lineno}: field 'id': duplicate id {rec['id']!r} (first on line "
                    f"{seen[rec['id']]}); ids must be unique within an arm"
                )
            seen[rec["id"]] = lineno
            records.append(rec)
    if not records:
        raise InputFileError(f"{p}: no records; expected one JSON object per line")
    return records


def _check_field_map(field_map: dict[str, str] | None) -> dict[str, str]:
    fmap = dict(field_map or {})
    for target, source in fmap.items():
        if target not in ALIASES:
            raise ConfigError(
                f"field map: unknown target {target!r}; use one of {', '.join(TARGETS)} (as target=source_field)"
            )
        if not isinstance(source, str) or not source:
            raise ConfigError(f"field map: {target}= needs a source field name")
    return fmap


def _parse_line(p: Path, lineno: int, raw: bytes) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{p}:{lineno}: not valid UTF-8 at byte {e.start}; re-encode the file as UTF-8") from None
    if not text.strip():
        return None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputFileError(f"{p}:{lineno}: invalid JSON ({msg}); write one JSON object per line") from None
    if not isinstance(obj, dict):
        raise InputFileError(f"{p}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    if _SURROGATE_ESCAPE.search(text):
        # "\ud800" parses to a lone surrogate that no UTF-8 run file could hold later.
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputFileError(
                f"{p}:{lineno}: unpaired surrogate escape (\\uD800-\\uDFFF) in a string; fix the text encoding"
            ) from None
    return obj


def _reject_constant(name: str) -> Any:
    # json accepts NaN/Infinity by default; they are not JSON and no label may be one.
    raise ValueError(f"{name} is not valid JSON")


def _lookup(obj: dict[str, Any], target: str, fmap: dict[str, str], where: str) -> tuple[str | None, Any]:
    """(source field name, value) for a target, or (None, None) when absent."""
    if target in fmap:
        src = fmap[target]
        if src not in obj:
            raise InputFileError(f"{where}: field {src!r} (mapped to {target}) missing; check the field map")
        return src, obj[src]
    for alias in ALIASES[target]:
        if alias in obj:
            return alias, obj[alias]
    return None, None


def _to_record(p: Path, lineno: int, obj: dict[str, Any], fmap: dict[str, str]) -> dict[str, Any]:
    where = f"{p}:{lineno}"

    def bad(field: str, want: str, got: Any) -> InputFileError:
        shown = json.dumps(got)[:60]
        return InputFileError(f"{where}: field {field!r}: expected {want}, got {shown}")

    id_src, rid = _lookup(obj, "id", fmap, where)
    if id_src is None:
        raise InputFileError(f"{where}: missing id; add an 'id' (or task_id/prompt_i/i) field")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        raise bad(id_src, "a non-empty string or integer id", rid)
    rid = str(rid)

    def text(target: str) -> tuple[str | None, str | None]:
        src, val = _lookup(obj, target, fmap, where)
        if src is None or val is None:
            return src, None
        if not isinstance(val, str):
            raise bad(src, "a string", val)
        return src, val

    _, prompt = text("prompt")
    _, response = text("response")
    fr_src, finish = text("finish_reason")
    if finish is not None and finish not in ("stop", "length"):
        raise bad(fr_src, '"stop" or "length"', finish)
    nt_src, n_tokens = _lookup(obj, "n_tokens", fmap, where)
    if n_tokens is not None and (isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0):
        raise bad(nt_src, "a non-negative integer", n_tokens)
    kind_src, kind = text("kind")
    _, model = _lookup(obj, "model", fmap, where)

    scores: dict[str, dict[str, Any]] = {}

    def add(task: str, src: str, value: Any) -> None:
        if value is None:
            s = Score.unscored(SOURCE, VERSION, f"label {src!r} is null")
            s.detail["field"] = src
        else:
            s = Score(scorer=SOURCE, version=VERSION, value=value, detail={"field": src})
        scores[ScoreKey.of(task, SOURCE)] = s.to_json()

    # correct / passed: the same label under two names; both present must agree.
    explicit: tuple[str, Any] | None = None
    for target in ("correct", "passed"):
        src, val = _lookup(obj, target, fmap, where)
        if src is None:
            continue
        if val is not None and not isinstance(val, bool):
            raise bad(src, "true, false or null", val)
        if explicit is not None and explicit[1] != val:
            raise InputFileError(f"{where}: fields {explicit[0]!r} and {src!r} disagree; keep one correctness label")
        explicit = (src, val)
    if explicit is not None:
        add("correct", *explicit)

    cov_src, cov = _lookup(obj, "coverage", fmap, where)
    if cov_src is not None:
        if cov is not None and (
            isinstance(cov, bool) or not isinstance(cov, (int, float)) or not math.isfinite(cov) or not 0 <= cov <= 1
        ):
            raise bad(cov_src, "a number in 0..1 or null", cov)
        add("coverage", cov_src, None if cov is None else float(cov))
        if explicit is None:
            # The paper's Chef rule: correct iff coverage >= 0.5.
            add("correct", cov_src, None if cov is None else bool(correct_at(cov)))
            scores[ScoreKey.of("correct", SOURCE)]["detail"]["derived"] = "coverage>=0.5"

    v_src, verbal = _lookup(obj, "verbal", fmap, where)
    if v_src is not None:
        if verbal is not None:
            if not isinstance(verbal, str) or verbal.strip().lower() not in ("assert", "hedge"):
                raise bad(v_src, '"assert", "hedge" or null', verbal)
            verbal = verbal.strip().lower()
        add("verbal", v_src, verbal)

    s_src, score = _lookup(obj, "score", fmap, where)
    if s_src is not None:
        if score is not None and (isinstance(score, bool) or not isinstance(score, int) or score not in (0, 1, 2)):
            raise bad(s_src, "an MCAS score 0, 1, 2 or null", score)
        add("mcas", s_src, score)

    meta: dict[str, Any] = {"source_file": str(p), "line": lineno}
    if kind is not None:
        meta["kind"] = kind
    if isinstance(model, str):
        meta["model"] = model

    sample = Sample(
        id=rid,
        prompt=prompt or "",
        messages=[{"role": "user", "content": prompt}] if prompt else [],
        output=response if response is not None else "",
        finish_reason=finish,
        n_tokens=n_tokens,
        decoding={},
        seed=None,
        scores=scores,
        meta=meta,
        extra={"output_missing": True} if response is None else {},
    )
    return sample.to_json()
