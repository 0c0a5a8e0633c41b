# Quick start: `make lab` (the tutorials: JupyterLab, or run headless without a browser) and
# `make test` (everything: lint, unit tests, the tutorials under nbval, the Binder environment check).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: setup lab demo test check lint unit binder-check notebooks images pins bench bench-quick bench-user bench-indicators bench-tweak bench-sweep clean

# The versions Binder pins are the versions tested: binder/requirements.txt is used as constraints.
$(VENV)/.installed: pyproject.toml binder/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c binder/requirements.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

lab: setup
	$(PY) tools/lab.py

demo: setup
	$(PY) -m rustybt_nb demo

lint: setup
	$(PY) -m ruff check rustybt_nb tests benchmarks tools conftest.py

# Unit tests, the browser test and the tutorials under nbval.
check: lint
	$(PY) -m pytest

binder-check:
	bash tools/binder_check.sh

test: check binder-check

# Re-execute the tutorials in place (their committed outputs must come from the current code).
notebooks: setup
	$(PY) tools/run_notebooks.py

# The README pictures, from a real run, drawn by headless Chromium.
images: setup
	$(PY) tools/make_readme_images.py

# Regenerate binder/requirements.txt from a fresh environment with the current dependencies.
pins:
	bash tools/pin_binder.sh

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV)/.bench
	$(PY) benchmarks/bench_engine.py

bench-quick: $(VENV)/.bench
	$(PY) benchmarks/bench_engine.py --quick

# Strategies as users write them (S1u-S3u, a 100-asset monthly rebalance S4) vs backtrader, and the
# cost of each strategy API call.
bench-user: $(VENV)/.bench
	$(PY) benchmarks/bench_user.py

# Indicators declared once vs data.history in a 10x10 sweep, against backtesting.py's optimize and vectorbt.
bench-indicators: $(VENV)/.bench
	$(PY) benchmarks/bench_indicators.py

# The tweak panel's latency (set() -> figures updated), 1 and 10 years of daily AAPL; needs only the notebook extras.
bench-tweak: setup
	$(PY) benchmarks/bench_tweak.py

# Parameter sweeps: serial vs a 2-worker LocalCluster, vs backtesting.py's optimize, memory per row (about 2 min).
bench-sweep: $(VENV)/.bench
	$(PY) benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
