# Everything a user runs. Each target installs what it needs into .venv first.
# Concern-specific targets live in mk/*.mk and are included at the bottom.

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

export AWS_DEFAULT_REGION ?= us-east-1

.DEFAULT_GOAL := help

.PHONY: help venv test test-unit bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	@$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(STAMP) ## Create .venv and install pinned requirements

test: $(STAMP) ## Run the whole test suite (unit, functional, e2e, terraform)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run only tests that need no servers
	$(PY) -m pytest tests/unit tests/functional $(PYTEST_ARGS)

bench: $(STAMP) ## Measure speed and memory (in-process, then the local stack); writes build/bench.json
	$(PY) bench/run.py $(BENCH_ARGS)

clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

-include mk/*.mk
