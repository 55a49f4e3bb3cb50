# One command for each job; every target works from a fresh clone with nothing installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# uv installs the packages (it downloads in parallel: several times faster than pip); pip installs only uv.
# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing else writes the .pyc files
# and each process would compile TensorFlow again on import (measured: 22 s instead of 8 s).
UV_PIP     = $(1)/uv pip install --quiet --compile-bytecode --python $(1)/python
UV_INSTALL = $(1)/python -m pip install --quiet --upgrade pip uv && $(call UV_PIP,$(1))
# Synthetic data sets and outputs of test runs stay inside the checkout (git ignores them).
export DEFECTLIB_DATA_HOME ?= $(CURDIR)/.defectlib-data
export MPLBACKEND ?= Agg
export TF_CPP_MIN_LOG_LEVEL ?= 2
# TensorFlow's oneDNN CPU kernels, which it turns on by itself only on CPUs with AVX512-VNNI, AVX512-BF16,
# AVX-VNNI or AMX: on the 2-core AVX2 machines of CI, lesson 1's CNN trains in about 62 % of the time with them
# (benchmarks/neu_cnn.py; the setup page, 'Speed on a CPU'). The notebooks and benchmarks set it themselves too.
export TF_ENABLE_ONEDNN_OPTS ?= 1

# make test-colab: a second environment with Google Colab's package versions (inside _build/).
COLAB_PINS := constraints/colab.txt
# Colab's Python is 3.13: test-colab uses python3.13 when the machine has one that runs (on PATH, or
# pyenv's), otherwise $(PYTHON); it prints which.
COLAB_PYTHON ?= $(or $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13); do \
	$$p -c "" 2>/dev/null && { echo $$p; break; }; done),$(PYTHON))
COLAB_VENV := _build/colab-venv
COLAB_BIN  := $(COLAB_VENV)/bin
# Two test processes: on 2 cores they overlap one notebook's graph building (single-threaded Python)
# with another's training; --dist loadfile keeps each notebook (and each test file) in one process.
PARALLEL   := -n 2 --dist loadfile
NBVAL      := -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=900 --durations=15 $(PARALLEL)

.PHONY: help install test test-colab test-floors lib lib-check unit notebooks book book-check lab bench repo-url clean

help:
	@echo "make test   unit tests + every notebook under nbval (fast mode) + site structure check"
	@echo "make test-colab   every notebook (fast mode) in Colab's package versions ($(COLAB_PINS))"
	@echo "make test-floors  the lowest versions pyproject.toml allows, with a smoke test of the code that needs them"
	@echo "make lib    write the lessons' #@save definitions into defectlib (tools/make_lib.py)"
	@echo "make unit   unit tests and doctests only;  make notebooks   the notebooks only"
	@echo "            (lessons 2-4 as offline demos, on ../shared/data/NEU-DET when it is there)"
	@echo "make book   build the Jupyter Book into _build/html (executes notebooks, cached;"
	@echo "            without the real data or weights each lesson runs as a demo, see book/setup.md)"
	@echo "make repo-url   write repository.url of _config.yml into every file that needs it"
	@echo "make lab    Jupyter Lab on the notebooks"
	@echo "make bench  run the benchmarks in benchmarks/ (needs the real data in ../shared/data)"
	@echo "make clean  remove the build, caches and generated data (keeps .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(call UV_INSTALL,$(BIN)) -e ".[test,book]"
	touch $(STAMP)

install: $(STAMP)

# The README's test command; .ci/run calls exactly this. Unit tests and doctests, then every
# notebook top to bottom under nbval in fast mode, then the site's structure.
test: lib-check unit notebooks book-check

# The lessons' pages are the only source of the models they teach: cells marked #@save are written
# into generated defectlib modules (tools/make_lib.py). lib-check fails when those are out of date.
lib: $(STAMP)
	$(BIN)/python tools/make_lib.py

lib-check: $(STAMP)
	$(BIN)/python tools/make_lib.py --check

unit: $(STAMP)
	$(BIN)/python -m pytest tests defectlib tools -p no:cacheprovider --ignore=tests/test_site.py $(PARALLEL)

# Lessons 1 and 5 in fast mode; lessons 2-4 as book/instructors.md's offline recipe runs them
# ('Running with the real data'): DEFECTLIB_FAST unset, DEFECTLIB_OFFLINE=1 and the NEU folder of the
# reference data when it is beside the checkout, so that each decides on a demo and keeps to it.
# Lessons 2-4 get a data home of their own without saved models, and lesson 3 runs before lesson 2, so that
# lessons 2 and 3 train the earlier lessons' models here; test-colab runs lessons 1, 2 and 3 in order in one
# data home, so that lessons 2 and 3 load them there.
SHARED_NEU := $(wildcard $(CURDIR)/../shared/data/NEU-DET)
notebooks: $(STAMP)
	DEFECTLIB_FAST=1 $(BIN)/python -m pytest notebooks/01_*.ipynb notebooks/05_*.ipynb $(NBVAL)
	rm -rf $(DEFECTLIB_DATA_HOME)/offline-demo/models
	env -u DEFECTLIB_FAST DEFECTLIB_OFFLINE=1 $(if $(SHARED_NEU),DEFECTLIB_NEU_DIR=$(SHARED_NEU)) \
		DEFECTLIB_DATA_HOME=$(DEFECTLIB_DATA_HOME)/offline-demo \
		$(BIN)/python -m pytest notebooks/03_*.ipynb notebooks/02_*.ipynb notebooks/04_*.ipynb $(NBVAL)

# Colab's environment: a fresh venv with Colab's versions of the packages the course uses
# ($(COLAB_PINS)), then defectlib installed by the notebooks' own install cell (pip install
# git+<repository>, here this checkout's committed HEAD), which must not change any pinned
# version; then, with nothing else installed, every module the notebooks import must import
# (tests/test_install.py); then nbval (its own dependencies held to the pins) runs every notebook,
# lessons 1 and 5 first: lessons 2 and 3 load the CNN lesson 1 saved, and lesson 3 the models of lesson 2.
test-colab:
	@echo "test-colab: $$($(COLAB_PYTHON) --version) ($(COLAB_PYTHON)); Colab runs Python 3.13"
	rm -rf $(COLAB_VENV)
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(call UV_INSTALL,$(COLAB_BIN)) -r $(COLAB_PINS)
	$(COLAB_BIN)/python -m pip freeze > $(COLAB_VENV)/before.txt
	$(COLAB_BIN)/python tools/run_install_cell.py notebooks/01_cnn_from_scratch.ipynb "file://$(CURDIR)"
	$(COLAB_BIN)/python -m pip freeze > $(COLAB_VENV)/after.txt
	$(COLAB_BIN)/python tools/check_pins.py $(COLAB_PINS) $(COLAB_VENV)/before.txt $(COLAB_VENV)/after.txt
	$(COLAB_BIN)/python tests/test_install.py
	$(call UV_PIP,$(COLAB_BIN)) -c $(COLAB_PINS) "pytest>=8,<10" "pytest-xdist>=3.5,<4" "nbval>=0.11,<0.12" "ipykernel>=6.29,<8"
	DEFECTLIB_FAST=1 $(COLAB_BIN)/python -m pytest notebooks/01_*.ipynb notebooks/05_*.ipynb $(NBVAL)
	DEFECTLIB_FAST=1 $(COLAB_BIN)/python -m pytest notebooks/02_*.ipynb notebooks/03_*.ipynb notebooks/04_*.ipynb $(NBVAL)

# The floors: the lowest version of every dependency that pyproject.toml allows (uv's lowest-direct
# resolution) on $(PYTHON) (the floor, 3.11, in CI), then the tests of the code the floors are for:
# the LiteRT export (Keras 3.13), the losses, the models, KerasHub's ViT, the data. A floor that
# stops being true fails here instead of in a student's environment.
FLOORS_VENV := _build/floors-venv
FLOOR_TESTS := tests/test_inspection.py tests/test_losses.py tests/test_mode.py tests/test_models_cnn.py \
	tests/test_vit.py tests/test_transfer.py tests/test_neu.py tests/test_rle.py tests/test_make_lib.py
test-floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(call UV_INSTALL,$(FLOORS_VENV)/bin) --resolution lowest-direct -e ".[test]"
	@$(FLOORS_VENV)/bin/python -m pip list 2>/dev/null | grep -iE "^(tensorflow|keras|keras-hub|numpy|pandas|ai-edge-litert) "
	$(FLOORS_VENV)/bin/python -m pytest $(FLOOR_TESTS) -p no:cacheprovider $(PARALLEL)

# The whole site, notebooks executed (cached in _build/.jupyter_cache), warnings are errors.
# --all re-reads every page (cheap: executed notebooks come from the cache), so a warning
# in a page that did not change is reported again instead of hiding in Sphinx's saved state.
# MPLBACKEND is unset so that the kernel uses its inline backend: with Agg (exported above for
# the tests) figures would be drawn but never shown on the pages.
# The notebook cache is keyed on the code only: when the run settings change (full, fast or demo
# mode, data folders, whether data and weights can be had; see defectlib.config.settings) it is
# cleared, so that the pages never show the outputs of another mode.
BOOK_MODE := _build/book-mode.txt
book: $(STAMP)
	@mkdir -p _build
	@$(BIN)/python -c "from defectlib.config import NEEDS, settings; s = settings(); \
		print('demo' if s.demo else 'fast' if s.fast else 'full', repr(s), repr(settings(needs=NEEDS).demo_reason))" \
		> $(BOOK_MODE).new
	@if ! cmp -s $(BOOK_MODE).new $(BOOK_MODE); then echo "run settings changed: clearing _build/.jupyter_cache"; \
		rm -rf _build/.jupyter_cache; fi
	@mv $(BOOK_MODE).new $(BOOK_MODE)
	@echo "book: the notebooks run in $$(cut -d' ' -f1 $(BOOK_MODE)) mode (book/setup.md, 'Full mode, demo mode')"
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
	$(call UV_PIP,$(BIN)) -e ".[lab]"
	$(BIN)/jupyter lab notebooks

# Full mode always: the benchmarks measure the real recipes on the real data.
bench: $(STAMP)
	@for script in benchmarks/[!_]*.py; do echo "== $$script"; DEFECTLIB_FAST=0 $(BIN)/python $$script || exit 1; done

# The repository URL is set once, in _config.yml (repository.url); this writes it everywhere else.
repo-url: $(STAMP)
	$(BIN)/python tools/set_repo_url.py

clean:
	rm -rf _build .pytest_cache .hypothesis .defectlib-data notebooks/*.keras
	find . -name __pycache__ -prune -exec rm -rf {} +
