"""bench/demo_timing.py's screen check: what issue 17 forbids on the demo's screen (library
noise, numbers cut at 80 columns) is counted, and a clean screen counts 0."""

from __future__ import annotations

from tests.helpers.bench import load_bench


def _mod():
    return load_bench("demo_timing")


CLEAN = """\
──── dispo demo 2/3: dispo falsify /tmp/runs/20261207_044445_train-arc1_smollm2… ────
│ pass@1              │         0.3125 │         0.2500 │
│ student:svr_rate    │ -0.0625 │ FALSIFIED    │ seed-variance: effect vanished │
"""


def test_clean_screen_counts_nothing_and_a_cut_path_in_a_rule_is_not_a_cut_number():
    r = _mod().screen_report(CLEAN)
    assert r["cut_cells"] == 0 and r["noise_lines"] == 0 and r["lines"] == 3


def test_cut_cells_and_library_noise_are_counted():
    noisy = CLEAN + (
        "│ truncation_rate │ 0.00… │ trunc… │\n"
        "/x/transformers/utils.py:12: FutureWarning: `torch_dtype` is deprecated\n"
        "Map: 100%|██████████| 4/4 [00:00<00:00, 812.1 examples/s]\n"
        "Converting and de-quantizing GGUF tensors...:  21%|██▏       | 58/272 [00:00<00:01, 108.74it/s]\n"
        "{'loss': 0.33, 'grad_norm': 1.2, 'epoch': 1.0}\n"
    )
    r = _mod().screen_report(noisy)
    assert r["cut_cells"] == 1
    assert r["noise_lines"] == 4 and "FutureWarning" in r["noise_examples"][0]
