# Two commands do all the set-up: `make demo` and `make test`.
# Both create (once) and then reuse a local virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean venv install-pi fast pure

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	@echo "Installing invtable with plotting into $(VENV) ..."
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	@echo "Installing invtable with test tools into $(VENV) ..."
	$(BIN)/python -m pip install --quiet -e '.[plot,dev]'
	@touch $@ $(VENV)/.demo-installed

venv: $(VENV)/.test-installed

demo: $(VENV)/.demo-installed
	$(BIN)/invtable demo

# Opt-in (never on the Pi): the simulator's hot modules compiled with mypyc into build/fast
# (controller/core/fastload.py, docs/performance.md). Rebuilt when any source changes; a build
# that no longer matches its sources is ignored with a warning. `make pure` removes it.
FAST_SOURCES := $(shell find controller hal sim firmware -name '*.py' -not -path '*/tests/*' 2>/dev/null)

$(VENV)/.fast-installed: pyproject.toml | $(VENV)/.test-installed
	$(BIN)/python -m pip install --quiet -e '.[plot,dev,fast]'
	@touch $@

build/fast/manifest.json: $(FAST_SOURCES) | $(VENV)/.fast-installed
	INVTABLE_PURE=1 $(BIN)/python -m controller.app.fastbuild

fast: build/fast/manifest.json

pure:
	rm -rf build/fast

# With a compiled build present (`make fast` was run), it is brought up to date first.
test: $(VENV)/.test-installed $(if $(wildcard build/fast/manifest.json),build/fast/manifest.json)
	$(BIN)/python -m pytest -n auto

# Style and types: ruff (format and lint at 100 columns) and mypy on the host code.
lint: $(VENV)/.test-installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.demo-installed
	$(BIN)/invtable bench

# On the Raspberry Pi (the repository cloned to /opt/invtable): a venv with lgpio, then the
# systemd unit, the invtable user and /etc/invtable/config.toml (asks for sudo).
install-pi: | $(BIN)/python
	$(BIN)/python -m pip install --quiet '.[pi]'
	sudo $(BIN)/invtable install-service

clean:
	rm -rf $(VENV) out build .pytest_cache .hypothesis *.egg-info
