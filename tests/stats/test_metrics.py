"""Hand-computed checks of dispo.stats.metrics (worked examples in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispo.stats import metrics as M

# ---------------------------------------------------------------- pass@k


def test_pass_at_k_hand_examples():
    # n=5, c=2: pass@1 = 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
    assert M.pass_at_k(5, 2, 1) == pytest.approx(0.4)
    # pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert M.pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n-c = 1 < k = 2: every 2-subset holds a correct sample
    assert M.pass_at_k(4, 3, 2) == 1.0
    assert M.pass_at_k(10, 0, 3) == 0.0


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError, match="k=6 exceeds n=5"):
        M.pass_at_k(5, 1, 6)
    with pytest.raises(ValueError):
        M.pass_at_k(5, 6, 1)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_binomial_definition(nck):
    n, c, k = nck
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert M.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- content / rates


def test_coverage_and_correct_at():
    assert M.coverage([True, False, True, True]) == 0.75  # 3 of 4 claims
    assert math.isnan(M.coverage([]))
    assert M.correct_at(0.5) is True  # the paper's rule is >= 0.5
    assert M.correct_at(0.49) is False
    assert M.correct_at([0.2, 0.6], threshold=0.6).tolist() == [False, True]


def test_rate():
    assert M.rate([True, False, False, False]) == 0.25
    assert math.isnan(M.rate([]))


# ---------------------------------------------------------------- disposition


def test_cells_and_ratios_hand_example():
    correct = [True, True, False, False, True]
    asserted = [True, False, True, False, True]
    # item0 cr, item1 hr, item2 cw, item3 hw, item4 cr
    cells = M.Cells.from_labels(correct, asserted)
    assert (cells.cr, cells.hr, cells.cw, cells.hw) == (2, 1, 1, 1)
    assert cells.accuracy == pytest.approx(3 / 5)
    # P(assert|wrong) - P(assert|correct) = 1/2 - 2/3
    assert M.assertion_asymmetry(cells) == pytest.approx(-1 / 6)
    assert M.hallucination_rate(cells) == pytest.approx(1 / 2)
    assert M.over_hedging(cells) == pytest.approx(1 / 3)


def test_paper_cells_asymmetry():
    # SmolLM2-1.7B profile 45/11/33/11: 33/44 - 45/56 = -0.0536 (published)
    assert round(M.assertion_asymmetry(M.Cells(45, 11, 33, 11)), 4) == -0.0536


def test_ratios_undefined_are_nan():
    all_right = M.Cells(3, 1, 0, 0)
    assert math.isnan(M.assertion_asymmetry(all_right))
    assert math.isnan(M.hallucination_rate(all_right))
    assert M.over_hedging(all_right) == 0.25
    assert math.isnan(M.over_hedging(M.Cells(0, 0, 2, 1)))
    assert math.isnan(M.Cells(0, 0, 0, 0).accuracy)


def test_mcas_and_mcas25():
    # (0+1+2+2) / (2*4) * 100 = 62.5
    assert M.mcas([0, 1, 2, 2]) == 62.5
    assert math.isnan(M.mcas([]))
    # per-item sums 25 and 15 -> mean 20 (/25)
    assert M.mcas25([[5, 5, 5, 5, 5], [1, 2, 3, 4, 5]]) == 20.0
    with pytest.raises(ValueError):
        M.mcas25([[1, 2, 3]])


def test_recovery_and_capitulation():
    # failing before: items 0,1,3; fixed after: 0,3 -> 2/3
    assert M.recovery_rate([False, False, True, False], [True, False, True, True]) == pytest.approx(2 / 3)
    # passing before: 0,1,2; wrong after: 1,2 -> 2/3
    assert M.capitulation_rate([True, True, True, False], [True, False, False, True]) == pytest.approx(2 / 3)
    assert math.isnan(M.recovery_rate([True], [True]))
    assert math.isnan(M.capitulation_rate([False], [True]))


# ---------------------------------------------------------------- statistics


def test_bootstrap_ci_seeded_and_sensible():
    v = np.array([1] * 200 + [0] * 200)
    ci = M.bootstrap_ci(v, n_boot=2000, seed=1)
    assert ci == M.bootstrap_ci(v, n_boot=2000, seed=1)
    # normal approx: 0.5 +- 1.96*sqrt(.25/400) = 0.5 +- 0.049
    assert 0.44 < ci[0] < 0.47 and 0.53 < ci[1] < 0.56
    assert M.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert all(math.isnan(x) for x in M.bootstrap_ci([]))


def test_bootstrap_ci_custom_stat_on_rows():
    # rows are (correct, asserted); asymmetry is exactly -1 on every resample that has
    # both classes (right items always assert, wrong ones never do)
    rows = np.array([[1, 1]] * 10 + [[0, 0]] * 10, dtype=bool)
    stat = lambda r: M.assertion_asymmetry(M.Cells.from_labels(r[:, 0], r[:, 1]))  # noqa: E731
    assert M.bootstrap_ci(rows, stat, n_boot=200) == (-1.0, -1.0)


def test_paired_bootstrap_ci_constant_shift():
    a = np.arange(10.0)
    assert M.paired_bootstrap_ci(a, a + 1.0) == pytest.approx((1.0, 1.0))
    with pytest.raises(ValueError):
        M.paired_bootstrap_ci([1, 2], [1])


def test_mcnemar_hand_example():
    # 5 discordant pairs, all baseline-fail -> treatment-pass: p = 2 * 0.5**5 = 0.0625
    a = [False] * 5 + [True] * 3
    b = [True] * 5 + [True] * 3
    assert M.mcnemar_p(a, b) == pytest.approx(0.0625)
    assert M.mcnemar_p([True, False], [True, False]) == 1.0
    assert math.isnan(M.mcnemar_p([], []))


def test_paired_permutation_exact_small():
    # diffs 1,2,3: of the 8 sign flips only all-plus and all-minus reach |mean| >= 2 -> 2/8
    assert M.paired_permutation_p([0, 0, 0], [1, 2, 3]) == pytest.approx(0.25)
    assert M.paired_permutation_p([1, 2], [1, 2]) == 1.0


def test_holm_hand_example():
    # sorted 0.01, 0.03, 0.04 -> 0.01*3, 0.03*2, 0.04*1 -> monotone 0.03, 0.06, 0.06
    assert M.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = M.holm([0.01, float("nan"), 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)


def test_cohen_kappa_hand_example():
    # po = 3/4; pe = .5*.25 + .5*.75 = .5; kappa = (.75 - .5) / .5 = .5
    assert M.cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert math.isnan(M.cohen_kappa([1, 1], [1, 1]))


def test_auc_hand_example():
    # pos .35 beats .1 not .4; pos .8 beats both: 3 of 4 pairs
    assert M.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(M.auc([1, 1], [0.2, 0.3]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40))
def test_cells_partition_items(pairs):
    c, a = zip(*pairs)
    cells = M.Cells.from_labels(list(c), list(a))
    assert cells.n == len(pairs)
    assert cells.cr + cells.hr == sum(c)
    assert cells.cr + cells.cw == sum(a)


def test_auc_bootstrap_ci_is_the_percentile_interval_of_sklearn_aucs_on_the_same_resamples():
    """The vectorised rank AUC must equal roc_auc_score on every resample (ties included:
    scores are rounded so many tie), one-class resamples dropped, and the paired version
    must difference the two AUCs resample by resample."""
    from sklearn.metrics import roc_auc_score

    from dispo.stats.metrics import auc_bootstrap_ci

    rng = np.random.default_rng(3)
    n, n_boot = 14, 400  # few items: some resamples hold one class
    y = (rng.random(n) < 0.3).astype(int)
    p = np.round(rng.random(n) + 0.4 * y, 1)
    q = np.round(rng.random(n), 1)
    idx = np.random.default_rng(7).integers(0, n, size=(n_boot, n))
    one, paired = [], []
    for i in idx:
        if 0 < y[i].sum() < n:
            one.append(roc_auc_score(y[i], p[i]))
            paired.append(roc_auc_score(y[i], p[i]) - roc_auc_score(y[i], q[i]))
    assert len(one) < n_boot  # the drop path ran
    want = np.percentile(one, [2.5, 97.5])
    got = auc_bootstrap_ci(y, p, n_boot=n_boot, seed=7)
    assert np.allclose(got, want)
    assert np.allclose(auc_bootstrap_ci(y, p, baseline=q, n_boot=n_boot, seed=7), np.percentile(paired, [2.5, 97.5]))
    assert all(np.isnan(auc_bootstrap_ci(np.ones(5), np.arange(5.0))))  # one class: undefined, not 0 or 1


def test_mcnemar_power_matches_a_simulation_of_the_test_itself():
    """Power from the closed sum against simulating paired outcomes and running mcnemar_p
    (statsmodels' exact McNemar): same items, same flip probabilities."""
    from dispo.stats.metrics import mcnemar_p, mcnemar_power

    rng = np.random.default_rng(0)
    for n, psi in ((64, 0.1), (48, 0.2)):
        up, down = (psi + 0.1) / 2, (psi - 0.1) / 2
        hits = 0
        sims = 2000
        for _ in range(sims):
            u = rng.random(n)
            base = np.zeros(n, dtype=bool)
            treat = base.copy()
            treat[u < up] = True  # flipped up: wrong -> right
            base[(u >= up) & (u < up + down)] = True  # flipped down: right -> wrong
            hits += mcnemar_p(base, treat) < 0.05
        assert mcnemar_power(n, psi, 0.10) == pytest.approx(hits / sims, abs=0.035), (n, psi)
    # more items, more power; more churn at the same effect, less
    assert mcnemar_power(120, 0.1, 0.1) > mcnemar_power(64, 0.1, 0.1) > mcnemar_power(64, 0.3, 0.1)
    assert mcnemar_power(64, 0.0, 0.1) == mcnemar_power(64, 0.1, 0.1)  # discordance below delta is raised
    assert mcnemar_power(0, 0.1, 0.1) == 0.0
