"""The recipe contract (torchtune style): setup, run, cleanup; plus what every arc shares:
its settings (the arc's YAML is the one place defaults live) and the resume idiom."""

from __future__ import annotations

import copy
import functools
import time
from typing import Any, Callable


def merge(base: dict, over: dict | None) -> dict:
    """Deep merge: `over`'s values win; nested mappings merge key by key."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _arc_yaml(name: str) -> dict:
    from dispo.core.paths import conf_dir

    return _load_arc_yaml(str(conf_dir()), name)


@functools.lru_cache(maxsize=None)
def _load_arc_yaml(conf: str, name: str) -> dict:
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(f"{conf}/arc/{name}.yaml"), resolve=False)
    return {k: v for k, v in data.items() if k != "defaults"}


def arc_defaults(name: str) -> dict:
    """The defaults of arc `name` as its YAML (conf/arc/<name>.yaml) states them."""
    return copy.deepcopy(_arc_yaml(name))


def arc_settings(cfg: dict, name: str) -> dict:
    """The arc's settings: its YAML defaults under the composed config's `arc` section (a
    config built by hand in a notebook or test may give only the keys it changes)."""
    return merge(_arc_yaml(name), cfg.get("arc") or {})


class Recipe:
    """One arc. `cfg` is the resolved config dict; `run` the dispo.core.runs.Run it writes to.

    `run()` must be resumable: run each stage through `stage()` (or check
    `run.finished(name, artifact)` before it and call `run.complete_stage(name, info)` after),
    so an interrupted run redoes nothing finished.
    """

    def __init__(self, cfg: dict[str, Any], run: Any, judge: Any = None):
        self.cfg = cfg
        self.run_dir = run
        self.given_judge = judge  # built by run_train before the run dir exists; None: setup builds it

    def stage(
        self,
        name: str,
        fn: Callable[..., dict | None],
        *args: Any,
        artifact: str | None = None,
        summary: Callable[[dict], dict] | None = None,
    ) -> dict:
        """Run `fn(*args)` once per run. Without `artifact` its result is the stage's info in
        the manifest (plus `seconds`); with one, the result is written to that run file and
        the manifest records {"path": artifact, **summary(result)}. A finished stage is read
        back instead of redone."""
        run = self.run_dir
        if run.finished(name, *([artifact] if artifact else [])):
            return run.read_json(artifact) if artifact else run.stage_info(name)
        t0 = time.time()
        res = fn(*args) or {}
        if artifact:
            run.write_json(artifact, res)
            run.complete_stage(name, {"path": artifact, **(summary(res) if summary else {})})
        else:
            res["seconds"] = round(time.time() - t0, 2)
            run.complete_stage(name, res)
        return res

    def setup(self) -> None:
        pass

    def run(self) -> dict:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass
