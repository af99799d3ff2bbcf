# snnc: `make demo` sets everything up and runs the pipeline on an embedded default;
# `make test` runs the test suite (it sets up .venv first when needed).
# `make wheel` builds the wheel and runs it from a clean venv (tools/check_wheel.sh);
# `make lint` runs ruff (lint, format check) and mypy with the configuration in pyproject.toml.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out

.PHONY: install demo test wheel lint bench clean

install:
	bash tools/install.sh

demo: install
	$(VENV)/bin/snnc demo --out $(DEMO_OUT) --force

# Two pytest-xdist workers (CI has 2 cores), a whole file per worker (its module fixtures are built once),
# files in tests/conftest.py's longest-first order. TEST_JOBS=0 runs the suite in one process.
TEST_JOBS ?= 2

test: install
	$(PY) -m pytest -q -p no:cacheprovider $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder) tests

wheel: install
	bash tools/check_wheel.sh

# ruff (lint and format check) and mypy, configured in pyproject.toml; .ci/run runs it before the tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build dist
