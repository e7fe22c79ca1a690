"""Run files round-trip whatever a model writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=4))
def test_samples_round_trip_any_unicode_output(tmp_path_factory, outputs):
    """Protects: Run.write_samples/read_samples (and so resume, show, falsify) on outputs
    with any characters - including U+2028, U+0085 and \\x1c, which JSON written with
    ensure_ascii=False keeps raw and str.splitlines() would split a JSONL line at."""
    from dispo.core.runs import Run

    d = tmp_path_factory.mktemp("run")
    (d / "samples").mkdir()
    (d / "manifest.json").write_text("{}")
    (d / "config.yaml").write_text("seed: 0\n")
    rows = [{"id": str(i), "output": o + "\u2028\x85"} for i, o in enumerate(outputs)]
    Run(d).write_samples("base", rows)
    assert Run.open(d).read_samples("base") == rows
