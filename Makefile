# One command for each job; every target works from a fresh clone with nothing installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Synthetic data sets and outputs of test runs stay inside the checkout (git ignores them).
export DEFECTLIB_DATA_HOME ?= $(CURDIR)/.defectlib-data
export MPLBACKEND ?= Agg
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help install test unit notebooks book book-check lab bench clean

help:
	@echo "make test   unit tests + every notebook under nbval (fast mode) + site structure check"
	@echo "make book   build the Jupyter Book into _build/html (executes notebooks, cached)"
	@echo "make lab    Jupyter Lab on the notebooks"
	@echo "make bench  run the benchmarks in benchmarks/ (needs the real data in ../shared/data)"
	@echo "make clean  remove the build, caches and generated data (keeps .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

install: $(STAMP)

# The README's test command; .ci/run calls exactly this.
test: $(STAMP)
	DEFECTLIB_FAST=1 $(BIN)/python -m pytest tests defectlib notebooks \
		--nbval-lax --current-env --nbval-cell-timeout=900 -p no:cacheprovider
	$(MAKE) book-check

unit: $(STAMP)
	$(BIN)/python -m pytest tests defectlib

notebooks: $(STAMP)
	DEFECTLIB_FAST=1 $(BIN)/python -m pytest notebooks --nbval-lax --current-env --nbval-cell-timeout=900

# The whole site, notebooks executed (cached in _build/.jupyter_cache), warnings are errors.
book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "site: $(CURDIR)/_build/html/index.html"

# Structure, links and directives only (notebooks are executed by nbval in 'test').
book-check: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going --path-output _build/check \
		--config _config.yml --builder html -- 2>/dev/null || true
	BOOK_EXECUTE=off $(BIN)/python -m pytest tests/test_site.py -p no:cacheprovider

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build .pytest_cache .hypothesis .defectlib-data notebooks/*.keras
	find . -name __pycache__ -prune -exec rm -rf {} +
