# sqhw: every target bootstraps .venv by itself (idempotent; a no-op once installed).
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.sqhw-installed
JOBS    ?= 2

.PHONY: setup gen verify verify-all lint test test-all bench fpga report readme clean asic asic-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build on these machines; anything else pulls CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,fpga,eval]'
	touch $(STAMP)

setup: $(STAMP)

gen: $(STAMP)
	$(PY) -m sqhw.gen --rows 16

# lint-imports: the import-linter contracts of pyproject.toml (docs/layout.md).
lint: $(STAMP)
	$(VENV)/bin/ruff check sqhw verif
	$(VENV)/bin/lint-imports

# `slow` tests (wider matrices, bigger FPGA builds) run with `make verify-all`.
test: $(STAMP)
	PYTHONWARNINGS=error::DeprecationWarning $(PY) -m pytest -n $(JOBS) -m "not slow" --durations=15 verif

test-all: $(STAMP)
	PYTHONWARNINGS=error::DeprecationWarning $(PY) -m pytest -n $(JOBS) verif

verify: lint test

verify-all: lint test-all

bench: $(STAMP) asic-deps
	$(PY) -m sqhw.bench

# The ASIC stage's Debian packages (docs/asic.md): the OSU 0.18 um standard cells and
# OpenSTA. They do not install from PyPI; this needs root on Debian (a no-op once installed).
ASIC_DEBS := qflow-tech-osu018 opensta
asic-deps:
	@missing=$$(for p in $(ASIC_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing $$missing (Debian packages of the ASIC stage)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# ASIC area and critical path of the rows (docs/asic.md, docs/results/asic.json).
asic: $(STAMP) asic-deps
	$(PY) -m sqhw.bench.asic --json docs/results/asic.json

fpga: $(STAMP)
	$(PY) -m sqhw.fpga build --board ulx3s-85f --rows 1 --k-max 32

# The design-space report (docs/report.md): accuracy, area and utilization of every
# configuration, cached per configuration in build/report/cache.
report: $(STAMP)
	$(PY) -m sqhw.report --jobs $(JOBS)

# The README's result tables, rewritten from docs/results/*.json (verif/report/test_readme.py
# fails when they differ).
readme: $(STAMP)
	$(PY) -m sqhw.report.readme

clean:
	rm -rf build .pytest_cache
