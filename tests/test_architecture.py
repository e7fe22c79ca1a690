"""The dependency rules of docs/architecture.md, checked on the import statements of every
module (function-level imports included): nothing below commands/ imports commands/, the
layers point one way, and there are no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "dispo"

# Layers, lowest first. A unit is a top-level package or module of dispo (or a module named
# here on its own: reporting.report writes one run's report.md and sits below the runners,
# while reporting.crossrun reads many runs and sits at the top). A module may import its own
# unit and any lower layer; same-layer imports only where ALLOWED_SIDEWAYS says why.
LAYERS = [
    {"core"},
    {"models", "stats"},
    {"generate", "domains", "judges", "interventions", "probes", "reporting.report"},
    {"evaluation"},
    {"arcs", "falsify", "reporting", "sweep"},
    {"commands", "cli", "demo", "__main__"},
]
ALLOWED_SIDEWAYS = {
    # a domain builds the judge's requests; the lexical judge applies the chef checklist matcher
    ("domains", "judges"),
    ("judges", "domains"),
    # the paper's judges read text; on a local model it is written by the one generate() (judges/chat.py)
    ("judges", "generate"),
    # `dispo train` sweeps launch arcs; the cross-run report reads sweep directories
    ("sweep", "arcs"),
    ("reporting", "sweep"),
    # the entry points register and reuse the Typer commands
    ("cli", "commands"),
    ("demo", "commands"),
    ("__main__", "cli"),
}


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "dispo")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            if base.split(".")[0] != "dispo":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
    found.discard(name)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, m, set(mods)) for m, p in mods.items()}


def unit(mod: str) -> str:
    parts = mod.split(".")[1:]
    if len(parts) >= 2 and ".".join(parts[:2]) in set().union(*LAYERS):
        return ".".join(parts[:2])
    return parts[0] if parts else "dispo"


def layer(u: str) -> int:
    for i, units in enumerate(LAYERS):
        if u in units:
            return i
    raise AssertionError(
        f"dispo.{u} is in no layer of tests/test_architecture.py: add it (and to docs/architecture.md)"
    )


def test_every_unit_has_a_layer():
    for m in graph():
        if m != "dispo":
            layer(unit(m))


def test_nothing_below_commands_imports_commands():
    bad = [
        (m, d)
        for m, deps in graph().items()
        for d in deps
        if unit(d) == "commands" and unit(m) not in {"commands", "cli", "demo", "__main__"}
    ]
    assert not bad, f"library modules import the CLI layer: {bad}"


def test_layers_point_one_way():
    bad = []
    for m, deps in graph().items():
        if m == "dispo":
            continue
        for d in deps:
            um, ud = unit(m), unit(d)
            if ud == "dispo" or um == ud:
                continue
            lm, ld = layer(um), layer(ud)
            if ld > lm or (ld == lm and (um, ud) not in ALLOWED_SIDEWAYS):
                bad.append(f"{m} -> {d}")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(g.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_at_most_ten_top_level_modules():
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 10, top


@pytest.mark.parametrize(
    "g, has_cycle",
    [({"a": {"b"}, "b": {"a"}}, True), ({"a": {"b"}, "b": set()}, False), ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True)],
)
def test_cycle_finder_finds_cycles(g, has_cycle):
    assert (find_cycle(g) is not None) == has_cycle


def test_import_parser_sees_function_level_and_from_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "def f():\n    from dispo.core import atomic\n    import dispo.stats.metrics\nfrom dispo.core.errors import DispoError\n"
    )
    known = {"dispo.core", "dispo.core.atomic", "dispo.stats.metrics", "dispo.core.errors"}
    assert imports(src, "dispo.x", known) == {"dispo.core.atomic", "dispo.stats.metrics", "dispo.core.errors"}
