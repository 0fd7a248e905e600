# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Everything goes into ./.venv (created with the first python3 on PATH, >= 3.8).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dora-doctor-installed

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Start a private dora (loopback, free ports, .demo/), run a sample dataflow, inspect it
# while it is stopped, print the diagnosis, and tear everything down, also on failure.
demo: $(STAMP)
	$(PY) samples/demo.py

# The whole suite, against a real dora coordinator and daemon.
test: $(STAMP)
	$(PY) -m pytest -ra --durations=15
	# Stability (issue 13): the corpus scenarios that once flaked, 3 more runs each, same answer
	$(PY) -m pytest -ra -m stress -k "pickle_checkpoint or py312" tests/test_corpus.py

# Unit tests only (no dora processes).
test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not dora"

# Benchmarks: ratios measured side by side in one run, results in bench/results/*.json.
bench: $(STAMP)
	$(PY) bench/cli_startup.py
	$(PY) bench/attach_latency.py
	$(PY) bench/sampling_rate.py
	$(PY) bench/overhead.py
	$(PY) bench/tune_grace_overhead.py
	$(PY) bench/postmortem_speed.py
	$(PY) bench/html_report.py
	$(PY) bench/history_query.py
	$(PY) bench/watch_cost.py
	$(PY) bench/watch_parts.py
	$(PY) bench/watch_first_sample.py
	$(PY) bench/watch_cycles.py
	$(PY) bench/watch_cycles.py --restarts
	$(PY) bench/table.py --write

lint: $(STAMP)
	$(VENV)/bin/ruff check dora_doctor tests samples bench docs
	$(VENV)/bin/ruff format --check dora_doctor tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
