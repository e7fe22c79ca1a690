# dispo: `make demo` and `make test` are the whole set-up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
DISPO  := $(VENV)/bin/dispo
# CPU wheel on these machines; on a GPU box install your CUDA torch first and set TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo experiment lint test test-full test-fast bench clean-runs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	$(DISPO) fetch smollm2-135m
	touch $@

# the demo's teacher (synthesizer stage) is Qwen2.5-Coder-0.5B: fetched once (a no-op when cached)
demo: setup
	$(DISPO) fetch qwen2.5-coder-0.5b
	$(PY) -m dispo.demo

# ruff first: a lint or format error fails the target before the (long) test run
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# pyproject's addopts already has one -q: a second would hide pytest's summary line
# CI's command: everything except the `full` tests (kill/resume proofs of whole arcs, minutes each)
test: lint
	$(PY) -m pytest -p no:cacheprovider -m "not full"

# every test, `full` included (about twice CI's time on 2 cores): run before a release
test-full: lint
	$(PY) -m pytest -p no:cacheprovider

test-fast: lint
	$(PY) -m pytest -m "not slow"

# the first real experiment: the three arcs at arc.preset=small on Qwen2.5-Coder-0.5B (arc 1:
# teaching SmolLM2-135M), each falsified, then dispo report -> bench/results/arcs_small*. Not CI.
experiment: setup
	$(DISPO) fetch qwen2.5-coder-0.5b
	$(PY) bench/experiment.py

bench: setup
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run_all.py

clean-runs:
	rm -rf runs/2* runs/sweep_*
