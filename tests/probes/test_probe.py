"""dispo.probes.probe and `dispo probe`: the paper's Arc 3 numbers, the gate sweep, the taxonomy, input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dispo.core.errors import DispoError, InputFileError
from dispo.probes import probe as P

TRAIN = "smollm2-1.7b_step16_hlast.npz"
FRESH = "smollm2-1.7b_fresh_hlast.npz"


# --------------------------------------------------------------------------- acceptance: published numbers


@pytest.fixture(scope="module")
def reference_report(request):
    """`dispo probe TRAIN FRESH --json` on the paper's files, parsed from stdout."""
    import contextlib
    import io

    from dispo.probes.command import probe_command

    ref = request.getfixturevalue("reference_dir")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        probe_command(ref / TRAIN, ref / FRESH, [1.0, 0.1], 5, True)
    return json.loads(buf.getvalue())


@pytest.mark.parametrize("C, auc, asym, thr", [(1.0, 0.518720, -0.160628, 0.06), (0.1, 0.504831, -0.187802, 0.16)])
def test_reproduces_published_fresh_probe(reference_report, C, auc, asym, thr):
    row = next(r for r in reference_report["results"] if r["C"] == C)
    assert row["test"]["auc"] == pytest.approx(auc, abs=5e-5)
    assert row["test"]["balanced"]["asymmetry"] == pytest.approx(asym, abs=5e-5)
    assert row["test"]["balanced"]["thr"] == pytest.approx(thr, abs=1e-9)
    assert row["test"]["balanced"]["p_assert_correct"] >= 0.70
    assert row["verdict"]["mode"] == "capability-cliff"


def test_reference_fresh_positives_are_the_capability_cliff(reference_report):
    assert (reference_report["test"]["n_pos"], reference_report["test"]["n"]) == (9, 193)
    assert (reference_report["train"]["n_pos"], reference_report["train"]["n"]) == (56, 100)
    for row in reference_report["results"]:
        assert row["verdict"]["n_pos"] == 9
        assert "9/193" in row["verdict"]["reason"]


def test_probe_command_json_rounds_to_published(reference_report):
    got = {
        r["C"]: (
            round(r["test"]["auc"], 4),
            round(r["test"]["balanced"]["asymmetry"], 4),
            r["test"]["balanced"]["thr"],
            r["verdict"]["mode"],
        )
        for r in reference_report["results"]
    }
    assert got == {1.0: (0.5187, -0.1606, 0.06, "capability-cliff"), 0.1: (0.5048, -0.1878, 0.16, "capability-cliff")}
    assert all(r["cv"]["auc"] is not None and 0 <= r["cv"]["auc"] <= 1 for r in reference_report["results"])


def test_probe_command_table(reference_dir, capsys):
    from dispo.probes.command import probe_command

    probe_command(reference_dir / TRAIN, reference_dir / FRESH, [1.0], 2, False)
    out = capsys.readouterr().out
    assert "0.5187" in out and "-0.1606" in out and "0.06" in out and "capability-cliff" in out
    assert "-0.1878" not in out  # only the C asked for


# --------------------------------------------------------------------------- gate sweep / balanced


def test_gate_sweep_hand_computed():
    p = np.array([0.9, 0.2, 0.6, 0.1, 0.55])
    y = np.array([1, 0, 1, 0, 0])
    s = P.gate_sweep(p, y, np.array([0.05, 0.5, 0.58, 0.95]))
    # thr .05: all assert; .5: correct {.9,.6} both, wrong {.55} 1/3; .58: same correct, wrong 0/3; .95: none
    np.testing.assert_allclose(s["p_assert_correct"], [1, 1, 1, 0])
    np.testing.assert_allclose(s["p_assert_wrong"], [1, 1 / 3, 0, 0])
    np.testing.assert_allclose(s["asymmetry"], [0, 1 / 3 - 1, -1, 0])


def test_gate_asserts_at_exactly_the_threshold():
    s = P.gate_sweep(np.array([0.3, 0.3]), np.array([1, 0]), np.array([0.3]))
    assert s["p_assert_correct"][0] == 1.0 and s["p_assert_wrong"][0] == 1.0


def test_default_thresholds_are_the_paper_grid():
    assert len(P.THRESHOLDS) == 99
    assert P.THRESHOLDS[0] == 0.01 and P.THRESHOLDS[5] == 0.06 and P.THRESHOLDS[-1] == 0.99


def test_balanced_respects_min_assert_correct():
    sweep = {
        "thresholds": np.array([0.1, 0.2, 0.3]),
        "p_assert_correct": np.array([0.9, 0.72, 0.5]),
        "p_assert_wrong": np.array([0.8, 0.5, 0.0]),
        "asymmetry": np.array([-0.1, -0.22, -0.5]),
    }
    b = P.balanced(sweep)
    assert b["thr"] == 0.2 and b["asymmetry"] == pytest.approx(-0.22)
    assert P.balanced(sweep, min_assert_correct=0.95)["thr"] != P.balanced(sweep, min_assert_correct=0.95)["thr"]  # nan


def test_balanced_ties_pick_the_first_threshold():
    sweep = {
        "thresholds": np.array([0.1, 0.2, 0.3, 0.4]),
        "p_assert_correct": np.array([1.0, 0.8, 0.8, 0.8]),
        "p_assert_wrong": np.array([1.0, 0.5, 0.5, 0.6]),
        "asymmetry": np.array([0.0, -0.3, -0.3, -0.2]),
    }
    assert P.balanced(sweep)["thr"] == 0.2


def test_balanced_with_no_correct_items_is_nan():
    s = P.gate_sweep(np.array([0.1, 0.9]), np.array([0, 0]))
    assert np.isnan(P.balanced(s)["asymmetry"]) and np.isnan(P.balanced(s)["thr"])


# --------------------------------------------------------------------------- CV, transfer, taxonomy


def _separable(n=80, d=6, seed=0, shift=2.5):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(int)
    X = rng.normal(size=(n, d))
    X[:, 0] += shift * y
    return P.ProbeData(X=X, y=y, source="synthetic")


def test_cv_separates_signal_from_noise():
    sig = P.cross_validate(_separable(), C=1.0, k=5, seed=0)
    rng = np.random.default_rng(1)
    noise = P.ProbeData(X=rng.normal(size=(120, 6)), y=(np.arange(120) % 2), source="noise")
    nz = P.cross_validate(noise, C=1.0, k=5, seed=0)
    assert sig["auc"] > 0.9
    assert abs(nz["auc"] - 0.5) < 0.15
    assert sig["balanced"]["asymmetry"] < -0.5


def test_cv_is_deterministic_and_seeded():
    d = _separable(shift=0.5)
    a, _ = P.cv_predict(d.X, d.y, 1.0, 5, seed=0)
    b, _ = P.cv_predict(d.X, d.y, 1.0, 5, seed=0)
    c, _ = P.cv_predict(d.X, d.y, 1.0, 5, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.isfinite(a).all()


def test_cv_lowers_k_to_minority_count():
    d = _separable(n=40)
    y = np.zeros(40, dtype=int)
    y[:3] = 1
    p, k = P.cv_predict(d.X, y, 1.0, 5, 0)
    assert k == 3 and np.isfinite(p).all()
    y[:2] = 0
    with pytest.raises(InputFileError, match="2 items of each class"):
        P.cv_predict(d.X, y, 1.0, 5, 0)


def test_transfer_scores_the_test_set():
    tr, te = _separable(seed=0), _separable(seed=1)
    r = P.transfer(tr, te, 1.0)
    assert r["auc"] > 0.9 and r["p"].shape == (80,)
    assert P.classify(te.y, r["auc"], r["balanced"]["asymmetry"], P.FRESH_BARS, tr.y)["mode"] == "pass"


def test_classify_capability_cliff():
    train_y = np.array([1] * 50 + [0] * 50)
    test_y = np.array([1] * 9 + [0] * 184)
    # even "passing" numbers are a cliff when positives collapse
    assert P.classify(test_y, 0.9, -0.5, P.FRESH_BARS, train_y)["mode"] == "capability-cliff"
    # the same scarcity without a train reference (CV) is not a cliff, but 9 positives are too few to pass
    r = P.classify(test_y, 0.9, -0.5, P.FRESH_BARS, None)
    assert r["mode"] == "fail" and "too few" in r["reason"]
    # negatives collapsing (7 of 8 correct) cannot pass either
    assert P.classify(np.array([1] * 7 + [0]), 1.0, -1.0, P.FRESH_BARS, np.array([0, 1] * 4))["mode"] == "fail"
    # scarce in train too: no collapse relative to train
    assert P.classify(test_y, 0.52, -0.1, P.FRESH_BARS, np.array([1] * 5 + [0] * 95))["mode"] == "fail"
    # 14 positives at 7% is still a cliff; 40 positives at 20% is not
    assert P.classify(np.array([1] * 14 + [0] * 186), 0.5, 0.0, P.FRESH_BARS, train_y)["mode"] == "capability-cliff"
    assert P.classify(np.array([1] * 40 + [0] * 160), 0.7, -0.3, P.FRESH_BARS, train_y)["mode"] == "pass"


def test_classify_uniform_output_fail_and_pass():
    y = np.array([1] * 60 + [0] * 60)
    assert P.classify(y, 0.53, -0.2, P.FRESH_BARS, y)["mode"] == "uniform-output"
    assert P.classify(y, 0.47, -0.2, P.FRESH_BARS, y)["mode"] == "uniform-output"
    assert P.classify(y, 0.60, -0.2, P.FRESH_BARS, y)["mode"] == "fail"  # AUC under the bar
    assert P.classify(y, 0.70, -0.10, P.FRESH_BARS, y)["mode"] == "fail"  # asymmetry above the bar
    assert P.classify(y, 0.70, float("nan"), P.FRESH_BARS, y)["mode"] == "fail"
    assert P.classify(y, 0.63, -0.15, P.FRESH_BARS, y)["mode"] == "pass"  # bars are inclusive


# --------------------------------------------------------------------------- input validation


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, match",
    [
        (dict(X=np.ones(5), y=np.array([0, 1, 0, 1, 0])), "X has shape"),
        (dict(X=np.ones((5, 3)), y=np.array([0, 1, 0, 1])), "5 rows but y has 4"),
        (dict(X=np.ones((4, 3)), y=np.array([1, 1, 1, 1])), "single class"),
        (dict(X=np.array([[1.0, np.nan], [0, 1], [1, 1]]), y=np.array([0, 1, 0])), "NaN/inf in 1 row"),
        (dict(X=np.array([[1.0, np.inf], [0, 1], [1, 1]]), y=np.array([0, 1, 0])), "NaN/inf"),
        (dict(X=np.ones((3, 2)), y=np.array([0, 1, 2])), "only 0/1"),
        (dict(X=np.ones((3, 2)), y=np.array([[0], [1], [0]])), "y has shape"),
        (dict(X=np.ones((3, 2))), "missing field 'y'"),
    ],
)
def test_bad_npz_names_file_and_field(tmp_path, arrays, match):
    p = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputFileError, match=match) as e:
        P.load(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(InputFileError, match="junk.npz"):
        P.load(junk)
    with pytest.raises(InputFileError, match="no such features file"):
        P.load(tmp_path / "absent.npz")


def test_probe_command_rejects_bad_inputs(tmp_path):
    from dispo.probes.command import probe_command

    rng = np.random.default_rng(0)
    a = _save(tmp_path / "a.npz", X=rng.normal(size=(20, 4)), y=np.arange(20) % 2)
    b = _save(tmp_path / "b.npz", X=rng.normal(size=(20, 5)), y=np.arange(20) % 2)
    with pytest.raises(DispoError, match="5 features") as e:
        probe_command(a, b, None, 5, True)
    assert e.value.code == 2
    with pytest.raises(DispoError, match="must be > 0"):
        probe_command(a, a, [0.0], 5, True)
    with pytest.raises(DispoError, match="at least 2 folds"):
        probe_command(a, a, None, 1, True)


def test_single_class_test_file_is_an_input_error(tmp_path):
    """AUC and the asymmetry need both classes in TEST too; the error names the file and field."""
    from dispo.probes.command import probe_command

    rng = np.random.default_rng(0)
    a = _save(tmp_path / "a.npz", X=rng.normal(size=(30, 4)), y=np.arange(30) % 2)
    b = _save(tmp_path / "b.npz", X=rng.normal(size=(25, 4)), y=np.zeros(25, dtype=int))
    with pytest.raises(InputFileError, match="b.npz: field y has a single class"):
        probe_command(a, b, [1.0], 3, True)


def test_zero_positive_test_set_is_a_capability_cliff():
    """In-library (the arc's path) a fresh split with no positives is the extreme cliff."""
    tr = _separable()
    te = P.ProbeData(X=np.random.default_rng(0).normal(size=(25, 6)), y=np.zeros(25, dtype=int))
    r = P.transfer(tr, te, 1.0)
    assert np.isnan(r["auc"])
    assert P.classify(te.y, r["auc"], r["balanced"]["asymmetry"], P.FRESH_BARS, tr.y)["mode"] == "capability-cliff"
