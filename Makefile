# Everything a user runs. Each target installs what it needs into .venv first.
# Concern-specific targets live in mk/*.mk and are included at the bottom.

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

export AWS_DEFAULT_REGION ?= us-east-1

.DEFAULT_GOAL := help

.PHONY: help venv requirements test test-unit test-functional lint bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# First use (or a changed lock): install the hash-locked dev requirements.
# uv (pinned in the lock) installs them in seconds; where uv cannot be
# installed, plain pip does the same, more slowly.
UV_VERSION = $(shell sed -n 's/^uv==\([^ ;]*\).*/\1/p' requirements-dev.txt)
$(STAMP): requirements.txt requirements-dev.txt
	@echo "Setting up $(VENV) (first use or requirements changed): installing the locked packages..." >&2
	@start=$$(date +%s); \
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV) || exit 1; \
	if $(PIP) install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" >/dev/null 2>&1; then \
	  $(VENV)/bin/uv pip install --quiet --python $(PY) --require-hashes -r requirements-dev.txt || exit 1; \
	else \
	  echo "  uv could not be installed: using pip (about a minute)" >&2; \
	  $(PIP) install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt || exit 1; \
	fi; \
	echo "$(VENV) ready in $$(( $$(date +%s) - start )) s" >&2
	@touch $@

venv: $(STAMP) ## Create .venv and install the locked requirements

# The locks are universal (any OS, Python >= 3.11) and carry every wheel's hash;
# the target-runtime package installs requirements.txt with --require-hashes.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --generate-hashes --python-version 3.11 \
             --custom-compile-command "make requirements"
requirements: $(STAMP) ## Re-lock requirements.txt and requirements-dev.txt from the .in files
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.txt

# The packaging tests build for python3.13/x86_64 from build/wheelhouse, which is
# filled here (tests never download); offline, those tests skip and say why.
test: $(STAMP) ## Run the whole test suite (unit, functional, e2e, terraform)
	@$(MAKE) --no-print-directory wheelhouse RUNTIME=python3.13 ARCH=x86_64 || \
	  echo "could not download the python3.13 wheels: the packaging tests will skip" >&2
	$(PY) -m pytest $(PYTEST_ARGS)

# Pure tests: no server, no moto, no socket (about 5 s). Sans-I/O modules get
# their tests listed here as they are added.
UNIT_TESTS := tests/unit $(addprefix tests/local_stack/,test_apigw_events.py \
              test_apigw_decisions.py test_apigw_connection.py test_client_protocol.py test_client_ordering.py \
              test_client_token_hints.py test_schedule.py test_lambda_runtime.py test_issuer.py \
              test_sigv4.py test_logsafe.py test_metrics_collector.py)

test-unit: $(STAMP) ## Run the pure tests: no server, no moto (about 5 s)
	$(PY) -m pytest $(UNIT_TESTS) $(PYTEST_ARGS)

test-functional: $(STAMP) ## Run the app's handlers against moto, in-process and as a server on 127.0.0.1 (about 70 s)
	$(PY) -m pytest tests/functional $(PYTEST_ARGS)

lint: $(STAMP) ## Check for unused imports and names, undefined or shadowed ones (ruff, pyflakes rules)
	$(VENV)/bin/ruff check .

bench: $(STAMP) ## Measure speed and memory (in-process, then the local stack); writes build/bench.json
	$(PY) bench/run.py $(BENCH_ARGS)

clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

-include mk/*.mk
