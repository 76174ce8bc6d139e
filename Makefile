# Everything a user runs. Each target installs what it needs into .venv first.
# Concern-specific targets live in mk/*.mk and are included at the bottom.

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

export AWS_DEFAULT_REGION ?= us-east-1

.DEFAULT_GOAL := help

.PHONY: help venv test test-unit test-functional bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	@$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(STAMP) ## Create .venv and install pinned requirements

test: $(STAMP) ## Run the whole test suite (unit, functional, e2e, terraform)
	$(PY) -m pytest $(PYTEST_ARGS)

# Pure tests: no server, no moto, no socket (about 5 s). Sans-I/O modules get
# their tests listed here as they are added.
UNIT_TESTS := tests/unit $(addprefix tests/local_stack/,test_apigw_events.py \
              test_apigw_decisions.py test_apigw_connection.py test_client_protocol.py \
              test_client_token_hints.py test_schedule.py test_lambda_runtime.py test_issuer.py \
              test_sigv4.py test_logsafe.py)

test-unit: $(STAMP) ## Run the pure tests: no server, no moto (about 5 s)
	$(PY) -m pytest $(UNIT_TESTS) $(PYTEST_ARGS)

test-functional: $(STAMP) ## Run the app's handlers against moto, in-process and as a server on 127.0.0.1 (about 70 s)
	$(PY) -m pytest tests/functional $(PYTEST_ARGS)

bench: $(STAMP) ## Measure speed and memory (in-process, then the local stack); writes build/bench.json
	$(PY) bench/run.py $(BENCH_ARGS)

clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

-include mk/*.mk
