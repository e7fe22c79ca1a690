"""The recipe contract (torchtune style): setup, run, cleanup."""

from __future__ import annotations

from typing import Any


class Recipe:
    """One arc. `cfg` is the resolved config dict; `run` the dispo.core.runs.Run it writes to.

    `run()` must be resumable: check `run.stage_done(name)` before each stage and call
    `run.complete_stage(name, info)` after it, so an interrupted run redoes nothing finished.
    """

    def __init__(self, cfg: dict[str, Any], run: Any):
        self.cfg = cfg
        self.run_dir = run

    def setup(self) -> None:
        pass

    def run(self) -> dict:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass
