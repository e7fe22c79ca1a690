"""Pull the solution code out of a chat model's answer to a HumanEval prompt.

Chat models wrap code in prose, fences with or without a language tag, several blocks
(attempt, then tests, then a "corrected" version), Qwen3 think blocks, or a bare function
body. `extract_code` turns all of these into one program fragment that defines the entry
point, so that scoring measures the code and not the formatting. What it cannot find is ""
(scored as a failure, never guessed).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from dispo.core.types import Item

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+#.-]*)\s*$")
_PY_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")
# top-level statements kept from a solution: definitions and imports; examples, prints,
# asserts and `if __name__ == "__main__":` demos are dropped (they can fail on their own or
# block on input())
_KEEP_NODES = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)


@dataclass
class Extraction:
    """The extracted code and how it was found (for score details and debugging)."""

    code: str
    source: str  # fence | prose | body | none
    truncated: bool  # the chosen fence was never closed, or trailing lines did not parse


def strip_think(text: str) -> str | None:
    """Remove Qwen3 think blocks. None when a think block never ends (no answer was given).
    A lone `</think>` (the template opened the block in the prompt) ends the thinking."""
    text = _THINK_BLOCK.sub("", text)
    if "<think>" in text:
        return None
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    return text


def _fenced_blocks(text: str) -> list[tuple[str, str, bool]]:
    """(language tag, body, closed) for each fenced block; an unclosed final block runs to
    the end of the text (truncated generation)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        body = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * 3) and stripped.strip(fence[0]) == "":
                closed = True
                break
            body.append(lines[i])
            i += 1
        blocks.append((tag, "\n".join(body), closed))
        i += 1
    return blocks


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _looks_python(code: str) -> bool:
    return bool(re.search(r"^\s*(def |return\b|import |from \S+ import |for |if |while )", code, re.MULTILINE))


def _longest_parsable_prefix(code: str) -> tuple[str, bool]:
    """The code, or its longest line prefix that parses (dropping a cut-off tail)."""
    lines = code.rstrip().splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
            return candidate, end < len(lines)
        except SyntaxError:
            continue
    return code, False


def _keep_definitions(code: str) -> str:
    """Only imports, definitions and assignments at top level, in source order."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines()
    kept: list[str] = []
    for node in tree.body:
        if isinstance(node, _KEEP_NODES):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            kept.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n\n".join(kept) if kept else code


def _prompt_imports(prompt_code: str) -> str:
    return "\n".join(ln for ln in prompt_code.splitlines() if re.match(r"^(import |from \S+ import )", ln))


def _choose_block(blocks: list[tuple[str, str, bool]], entry_point: str) -> tuple[str, bool] | None:
    defining = [(b, closed) for tag, b, closed in blocks if _defines(b, entry_point)]
    if defining:
        # the last definition wins: models revise ("here is the corrected version") below
        return defining[-1]
    pythonish = [
        (b, closed) for tag, b, closed in blocks if tag in _PY_TAGS and (tag or _looks_python(b)) and b.strip()
    ]
    if not pythonish:
        return None
    return max(pythonish, key=lambda bc: len(bc[0]))


def _code_from_prose(text: str) -> str | None:
    """Code written without fences: from the first line that starts a definition or import
    (at column 0) to the end; the caller trims trailing prose by parsing."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _CODE_START.match(line):
            return "\n".join(lines[i:])
    return None


def _is_body(code: str) -> bool:
    """An indented function body with no def of its own (a base model continuing the prompt,
    or a chat answer that only gives the lines inside the function)."""
    return not re.search(r"^\s*(async\s+)?def\s", code, re.MULTILINE) and _looks_python(code)


def extract(output: str, item: Item) -> Extraction:
    """See `extract_code`; also says where the code came from and whether it was cut off."""
    entry_point = item.gold["entry_point"]
    prompt_code = item.gold["prompt_code"]
    text = strip_think(output)
    if text is None or not text.strip():
        return Extraction("", "none", text is None)

    truncated = False
    blocks = _fenced_blocks(text)
    chosen = _choose_block(blocks, entry_point) if blocks else None
    if chosen is not None:
        code, closed = chosen
        truncated = not closed
        source = "fence"
    else:
        prose = _code_from_prose(text)
        if prose is not None:
            code, source = prose, "prose"
        elif _looks_python(text) and text.startswith((" ", "\t")):
            code, source = text, "body"
        else:
            return Extraction("", "none", False)

    if _is_body(code) and not _defines(code, entry_point):
        body = textwrap.indent(textwrap.dedent(code).strip("\n"), "    ")
        body, cut = _longest_parsable_prefix(prompt_code.rstrip("\n") + "\n" + body)
        return Extraction(body + "\n", "body", truncated or cut)

    code, cut = _longest_parsable_prefix(textwrap.dedent(code))
    code = _keep_definitions(code)
    imports = _prompt_imports(prompt_code)
    missing = "\n".join(ln for ln in imports.splitlines() if ln not in code)
    if missing:
        code = missing + "\n\n" + code
    return Extraction(code.rstrip() + "\n", source, truncated or cut)


def extract_code(output: str, item: Item) -> str:
    """The solution code in a chat answer to a code item ("" if there is none).

    Fenced blocks (any or no language tag): the last one defining the entry point, else the
    longest python-looking one; else a bare `def` in prose; an indented body alone gets the
    prompt's signature and docstring prepended. Think blocks are removed (an unterminated
    one means no code), a truncated final block is used as far as it parses, demo code at
    top level is dropped and the prompt's imports are kept.
    """
    return extract(output, item).code


# ---------------------------------------------------------------------------------------
# protocol=paper (domain.extract=first_block): the phase-0 audit's rule, reimplemented.
# phase0_audit/evaluate.py:87-110 took the FIRST fenced block anywhere in the raw output
# (think blocks included: that is how a Qwen3 answer cut at 512 tokens could still "pass"
# or fail on code written while thinking); without a fence, the lines from the first `def `
# to the first blank line after a few lines; otherwise the whole output.
_FIRST_FENCE = re.compile(r"```(?:python)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_first_block(output: str, item: Item) -> Extraction:
    m = _FIRST_FENCE.search(output)
    if m:
        return Extraction(m.group(1).strip(), "fence", False)
    taken: list[str] = []
    for line in output.split("\n"):
        if taken or line.strip().startswith("def "):
            taken.append(line)
            if line.strip() == "" and len(taken) > 2:
                break
    if taken:
        return Extraction("\n".join(taken).strip(), "prose", False)
    return Extraction(output.strip(), "body", False)
