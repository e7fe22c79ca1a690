"""`dispo probe TRAIN.npz TEST.npz`: train the Arc 3 probe on one feature file, score another.

For each C: cross-validated AUC on TRAIN (stratified k-fold, seed 0), then fit on all of TRAIN
and report TEST AUC, the balanced assertion asymmetry with its threshold, and the verdict
(pass | fail | capability-cliff | uniform-output; criteria in dispo.probes.probe). Exit code 0 when
the command ran, whatever the verdict; bad files exit 2 with a one-line error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dispo.core.errors import DispoError


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "n/a" if x is None else format(x, spec)


def probe_command(train: Path, test: Path, C: list[float] | None = None, cv: int = 5, json_out: bool = False) -> dict:
    """Run the probe on TRAIN -> TEST and print a table (or JSON with json_out). Returns the report."""
    from dispo.probes import probe

    Cs = list(C) if C else [1.0, 0.1]
    for c in Cs:
        if not (c > 0):
            raise DispoError(f"--C {c}: the inverse regularisation strength must be > 0 (e.g. --C 1.0 --C 0.1)", code=2)
    if cv < 2:
        raise DispoError(f"--cv {cv}: cross-validation needs at least 2 folds", code=2)
    tr = probe.load(train)
    te = probe.load(test)
    if te.X.shape[1] != tr.X.shape[1]:
        raise DispoError(
            f"{test}: field X has {te.X.shape[1]} features but {train} has {tr.X.shape[1]}; "
            f"extract both with the same model and layers",
            code=2,
        )
    report = probe.jsonable(probe.probe_report(tr, te, Cs, cv=cv))
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return report

    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"probe {Path(train).name} -> {Path(test).name}  "
        f"(train {report['train']['n_pos']}/{report['train']['n']} correct, "
        f"test {report['test']['n_pos']}/{report['test']['n']} correct)"
    )
    for col in ("C", "test AUC", "balanced asym", "thr", f"CV AUC (train, k={cv})", "verdict"):
        t.add_column(col, justify="right" if col != "verdict" else "left")
    for r in report["results"]:
        b = r["test"]["balanced"]
        t.add_row(
            _fmt(r["C"], "g"),
            _fmt(r["test"]["auc"]),
            _fmt(b["asymmetry"], "+.4f"),
            _fmt(b["thr"], ".2f"),
            _fmt(r["cv"]["auc"]),
            r["verdict"]["mode"],
        )
    con = Console()
    con.print(t)
    bars = report["bars"]
    con.print(
        f"bars: CV AUC >= {bars['cv']['auc']}, asym <= {bars['cv']['asym']}; "
        f"test AUC >= {bars['test']['auc']}, asym <= {bars['test']['asym']}"
    )
    for r in report["results"]:
        con.print(f"C={r['C']:g}: {r['verdict']['mode']}: {r['verdict']['reason']}", soft_wrap=True)
    return report
