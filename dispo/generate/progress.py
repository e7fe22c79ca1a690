"""Progress display for a generation call: items done / total, generated tok/s, elapsed, ETA.

A rich progress bar on an interactive terminal; silent (a no-op object) when disabled or
when stdout is not a TTY, so logs and CI output stay clean. A stage names its generations with
`progress_label(...)` ("teacher eager", "arm student", ...) without every layer in between
passing a label down.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time

_LABEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("dispo_progress_label", default=None)


@contextlib.contextmanager
def progress_label(label: str):
    """Within this block, generation progress bars are described as `label`."""
    token = _LABEL.set(label)
    try:
        yield
    finally:
        _LABEL.reset(token)


def current_label(default: str = "generate") -> str:
    return _LABEL.get() or default


def bar_progress(middle: str):
    """The one rich layout dispo's bars share: label, bar, done/total, `middle` (a rich text
    template: the unit or the live rates), elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn(middle),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=False,
    )


class GenerationProgress:
    """Context manager. `tokens(n)` as tokens are produced, `item_done()` per finished item."""

    def __init__(self, total: int, enabled: bool = True, description: str = "generate"):
        self.total = total
        self.done = 0
        self.n_tokens = 0
        self.enabled = enabled and total > 0 and sys.stdout.isatty()
        self._description = current_label(description)
        self._progress = None
        self._task = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> "GenerationProgress":
        self._t0 = time.perf_counter()
        if self.enabled:
            self._progress = bar_progress("{task.fields[rates]}")
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=self.total, rates="")
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    def tokens(self, n: int) -> None:
        self.n_tokens += n
        if self._progress is not None:
            self._refresh()

    def item_done(self, n: int = 1) -> None:
        self.done += n
        if self._progress is not None:
            self._refresh()

    def _refresh(self) -> None:
        dt = max(time.perf_counter() - self._t0, 1e-9)
        rates = f"{self.n_tokens / dt:.1f} tok/s"
        self._progress.update(self._task, completed=self.done, rates=rates)
