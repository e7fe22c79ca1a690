"""The one metric catalog: every metric name dispo reports, what it is computed from, which way
is better, and the orders reports and claims use. Other modules import these names; none
spells its own list."""

from __future__ import annotations

# the rubric's five axes (1-5, binarised at >= 4) and the five MCAS /25 dimensions
AXES = (
    "factual_accuracy",
    "hedging_appropriateness",
    "pedagogical_framing",
    "self_verification",
    "completeness",
)
MCAS5_DIMS = (
    "uncertainty_calibration",
    "self_verification",
    "error_detection",
    "assumption_surfacing",
    "edge_case_awareness",
)

# content metrics (what the domain's gold decides); "pass@1" is accuracy on code tests
CONTENT_METRICS = ("pass@1", "accuracy", "coverage")
CORRECT_ALIASES = ("accuracy", "pass@1", "correct")
# verbal-cell metrics: P(assert|wrong) - P(assert|correct), cw/(cw+hw), hr/(hr+cr)
CELL_METRICS = ("assertion_asymmetry", "hallucination_rate", "over_hedging")
LOWER_IS_BETTER = frozenset({"assertion_asymmetry", "hallucination_rate", "over_hedging", "truncation_rate"})
DISPOSITION_PREFIXES = (
    "rubric.",
    "mcas",
    "svr_rate",
    "hedge_rate",
    "assertion_asymmetry",
    "hallucination_rate",
    "over_hedging",
)

# metric -> the score task ("task:source" key) it is computed from
METRIC_TASK = {
    "accuracy": "correct",
    "pass@1": "correct",
    "coverage": "coverage",
    "assertion_asymmetry": "verbal",
    "hallucination_rate": "verbal",
    "over_hedging": "verbal",
    "mcas": "mcas",
    "mcas25": "mcas5",
    "svr_rate": "svr",
    "hedge_rate": "hedge",
}

# report.md's headline columns, in order
HEADLINE = (
    "pass@1",
    "accuracy",
    "coverage",
    "truncation_rate",
    "mean_tokens",
    "assertion_asymmetry",
    "hallucination_rate",
    "over_hedging",
    "mcas",
    "mcas25",
    "svr_rate",
    "hedge_rate",
)
# the metrics `dispo eval` claims treatment-vs-base deltas on, in order
EVAL_CLAIM_METRICS = ("pass@1", "accuracy", "coverage", "assertion_asymmetry", "mcas", "hedge_rate", "svr_rate")
# `dispo import` also claims the /25 MCAS variant (imported runs often carry it)
IMPORT_CLAIM_METRICS = (
    "pass@1",
    "accuracy",
    "coverage",
    "assertion_asymmetry",
    "mcas",
    "mcas25",
    "hedge_rate",
    "svr_rate",
)


def task_of(metric: str) -> str:
    return "rubric" if metric.startswith("rubric.") else METRIC_TASK.get(metric, metric)


def known_metrics() -> list[str]:
    """Every metric name arm_metrics can produce."""
    names = ["accuracy", "pass@1", "coverage", "truncation_rate", "mean_tokens", "cells", *CELL_METRICS]
    names += ["mcas", "mcas25"]
    for a in AXES:
        names += [f"rubric.{a}", f"rubric.{a}.ge4"]
    return names + ["svr_rate", "hedge_rate"]
