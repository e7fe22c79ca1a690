"""The items of an imported log, so falsify can regenerate them with dispo's engine.

`dispo import` writes the log's prompts to ``artifacts/import_items.jsonl`` and sets
``domain: {name: imported, items: <that file>, ...}`` in the run's config. Content is
re-scored the way the log scored it:

- lm-eval generate_until tasks: the output is cut at the task's ``until`` strings (as
  lm-eval's HF backend does), then lm-eval's own filter pipeline and ``process_results`` are
  applied from the task config recorded in results_*.json. Needs lm-eval installed and the
  task's dataset loadable (lm-eval builds the task object from it); otherwise each item is
  unscored with that reason.
- inspect_ai logs: inspect's solvers and scorers are not re-run, so content is unscored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dispo.core.errors import DispoError
from dispo.core.types import Item, Score
from dispo.domains import DOMAINS
from dispo.domains.base import Domain

SCORER = "import"


@DOMAINS.register("imported")
class ImportedDomain(Domain):
    name = "imported"
    version = "imported-v1"
    splits = ("eval",)

    def __init__(
        self,
        items: str,
        format: str = "lm-eval",
        task: str | None = None,
        metric: str | None = None,
        filter: str | None = None,
        stop_strings: list[str] | None = None,
        task_config: dict | None = None,
        **_: Any,
    ):
        self.items_file = Path(items)
        self.format = format
        self.task = task
        self.metric = metric
        self.filter = filter
        self.stop_strings = list(stop_strings or [])
        self.task_config = dict(task_config or {})
        self._lm_task: Any = None
        self._why_unscored: str | None = None

    def items(self, split: str = "eval", limit: int | None = None) -> list[Item]:
        if not self.items_file.is_file():
            raise DispoError(f"imported items file {self.items_file} is missing; re-import the log with `dispo import`")
        out = []
        for line in self.items_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            d = json.loads(line)
            msgs = d.get("messages") or [{"role": "user", "content": d["prompt"]}]
            system = next((m["content"] for m in msgs if m["role"] == "system"), None)
            turns = [m for m in msgs if m["role"] != "system"][:-1]
            out.append(
                Item(
                    id=d["id"],
                    prompt=msgs[-1]["content"],
                    domain=self.name,
                    system=system,
                    turns=turns or None,
                    gold={"target": d.get("target"), "doc": d.get("doc")},
                    meta={"format": self.format, "task": self.task},
                )
            )
        return out[:limit] if limit else out

    # ------------------------------------------------------------------ scoring

    def _unscored(self, reason: str) -> Score:
        # ".correct": evaluate.content_keys keeps an unscored correctness score (with its reason)
        # under correct:import, so falsify reports why the regenerated outputs went unscored
        return Score.unscored(f"{SCORER}.{self.format}.correct", f"{self.format}/{self.metric}", reason)

    def content_score(self, item: Item, output: str, judge: Any | None = None) -> Score:
        if self.metric is None:
            return self._unscored("the log had no 0/1 metric to re-score with")
        if self.format != "lm-eval":
            return self._unscored("inspect_ai scorers are not re-run by dispo")
        task = self._lmeval_task()
        if task is None:
            return self._unscored(self._why_unscored or "lm-eval task unavailable")
        cut = cut_at_stops(output, self.stop_strings)
        from lm_eval.api.instance import Instance

        doc = item.gold.get("doc")
        inst = Instance(request_type="generate_until", doc=doc, arguments=(item.prompt, {}), idx=0)
        inst.resps = [cut]
        for ensemble in task._filters:  # lm-eval's own filter pipelines, in the task's order
            ensemble.apply([inst])
        if self.filter not in inst.filtered_resps:
            return self._unscored(f"lm-eval filter {self.filter!r} not in the task config")
        res = task.process_results(doc, [inst.filtered_resps[self.filter]])
        v = res.get(self.metric)
        if v is None:
            return self._unscored(f"lm-eval returned no {self.metric!r} for this item")
        return Score(
            scorer=f"{SCORER}.{self.format}",
            version=f"{self.format}/{self.metric}",
            value=bool(float(v)),
            detail={
                "field": self.metric,
                "filter": self.filter,
                "format": self.format,
                "rescored": True,
                "filtered_response": inst.filtered_resps[self.filter],
            },
        )

    def _lmeval_task(self):
        if self._lm_task is not None or self._why_unscored is not None:
            return self._lm_task
        if not self.task_config:
            self._why_unscored = "no lm-eval task config was imported (results_*.json missing)"
            return None
        try:
            from lm_eval.api.task import ConfigurableTask
        except ImportError:
            self._why_unscored = "re-scoring lm-eval outputs needs lm-eval: pip install 'dispo[bench]'"
            return None
        try:
            self._lm_task = ConfigurableTask(config=dict(self.task_config))
        except Exception as e:  # dataset not reachable offline, task code missing, ...
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            self._why_unscored = f"lm-eval could not rebuild task {self.task!r} here ({first})"
        return self._lm_task


def cut_at_stops(text: str, stops: list[str]) -> str:
    """lm-eval's HF backend cuts each generation at the first of its `until` strings."""
    for s in stops:
        if s:
            text = text.split(s)[0]
    return text
