# snnc: `make demo` sets everything up and runs the pipeline on an embedded default;
# `make test` runs the test suite (it sets up .venv first when needed).
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out

.PHONY: install demo test bench clean

install:
	bash tools/install.sh

demo: install
	$(VENV)/bin/snnc demo --out $(DEMO_OUT) --force

test: install
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
