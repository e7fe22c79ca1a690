"""Progress labels: a stage names the generation bars inside it; the name ends with the stage."""

from __future__ import annotations

import io

from rich.console import Console

from dispo.generate.progress import GenerationProgress, current_label, progress_label


def test_a_label_names_the_bars_inside_its_block_only():
    assert GenerationProgress(3, description="generate")._description == "generate"
    with progress_label("arm student"):
        assert GenerationProgress(3)._description == "arm student"
        with progress_label("falsify: regenerate base (seed 1)"):
            assert current_label() == "falsify: regenerate base (seed 1)"
        assert current_label() == "arm student"
    assert current_label("generate") == "generate"


def test_the_bar_shows_label_counts_rate_and_eta(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    import rich.progress

    real = rich.progress.Progress
    monkeypatch.setattr(
        rich.progress, "Progress", lambda *a, **k: real(*a, **{**k, "console": Console(file=buf, width=100)})
    )
    with progress_label("teacher eager"), GenerationProgress(2) as bar:
        bar.tokens(10)
        bar.item_done(2)
    out = buf.getvalue()
    assert "teacher eager" in out and "2/2" in out and "tok/s" in out and "eta" in out
