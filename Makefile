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
	@echo "make unit   unit tests and doctests only;  make notebooks   the notebooks only"
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

# The README's test command; .ci/run calls exactly this. Unit tests and doctests, then every
# notebook top to bottom under nbval in fast mode, then the site's structure.
test: unit notebooks book-check

unit: $(STAMP)
	$(BIN)/python -m pytest tests defectlib -p no:cacheprovider --ignore=tests/test_site.py

notebooks: $(STAMP)
	DEFECTLIB_FAST=1 $(BIN)/python -m pytest notebooks -p no:cacheprovider \
		--nbval-lax --current-env --nbval-cell-timeout=900 --durations=15

# The whole site, notebooks executed (cached in _build/.jupyter_cache), warnings are errors.
# --all re-reads every page (cheap: executed notebooks come from the cache), so a warning
# in a page that did not change is reported again instead of hiding in Sphinx's saved state.
# MPLBACKEND is unset so that the kernel uses its inline backend: with Agg (exported above for
# the tests) figures would be drawn but never shown on the pages.
book: $(STAMP)
	env -u MPLBACKEND $(BIN)/jupyter-book build . --all --warningiserror --keep-going
	@echo "site: $(CURDIR)/_build/html/index.html"

# Structure, links and directives only (notebooks are executed by nbval in 'test'): the same
# configuration as 'book', derived from _config.yml with notebook execution off, built from
# scratch into $(CHECK_DIR), then inspected by tests/test_site.py. Fails on any warning.
CHECK_DIR := _build/check
book-check: $(STAMP)
	rm -rf $(CHECK_DIR)
	$(BIN)/python book/check_config.py _config.yml $(CHECK_DIR)/_config.yml
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going \
		--path-output $(CHECK_DIR) --config $(CHECK_DIR)/_config.yml
	SITE_DIR=$(CHECK_DIR)/_build/html $(BIN)/python -m pytest tests/test_site.py -p no:cacheprovider

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	@for script in benchmarks/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build .pytest_cache .hypothesis .defectlib-data notebooks/*.keras
	find . -name __pycache__ -prune -exec rm -rf {} +
