"""Progress display for a generation call: items done / total, items/s, generated tok/s.

A rich progress bar on an interactive terminal; silent (a no-op object) when disabled or
when stdout is not a TTY, so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
import time


class GenerationProgress:
    """Context manager. `tokens(n)` as tokens are produced, `item_done()` per finished item."""

    def __init__(self, total: int, enabled: bool = True, description: str = "generate"):
        self.total = total
        self.done = 0
        self.n_tokens = 0
        self.enabled = enabled and total > 0 and sys.stdout.isatty()
        self._description = description
        self._progress = None
        self._task = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> "GenerationProgress":
        self._t0 = time.perf_counter()
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rates]}"),
                TimeElapsedColumn(),
                transient=False,
            )
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
        rates = f"{self.done / dt:.2f} items/s  {self.n_tokens / dt:.1f} tok/s"
        self._progress.update(self._task, completed=self.done, rates=rates)
