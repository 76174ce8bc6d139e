# Browser pages (web/) and their tests (tests/browser).
#   make publish SESSION=<id> LANG=<code> TEXT="..."   a translation to one language's
#                             listeners through the publish function (the local
#                             stack's Lambda Invoke API; PUBLISH_ENDPOINT=aws and
#                             FUNCTION=broadcast-dev-publish for a deployed stack)
#   make browser-deps         Chromium (apt-get, as root on Debian) and Playwright
#                             (requirements-dev.txt) for the browser tests
#   make test-browser         only the browser tests and the pages' unit tests
# The pages themselves: `make run`, then http://127.0.0.1:8000/listen and /speak.

.PHONY: publish browser-deps test-browser

PUBLISH_ENDPOINT ?= http://$(or $(HOST),127.0.0.1):$(or $(PORT),8000)
FUNCTION ?= publish
CHROMIUM ?= $(firstword $(wildcard /usr/bin/chromium /usr/bin/chromium-browser))

publish: $(STAMP) ## Send TEXT to the LANG listeners of SESSION (make publish SESSION=<id> LANG=es TEXT="...")
	@test -n "$(SESSION)" -a -n "$(LISTEN_LANG)" -a -n "$(TEXT)" || { echo 'usage: make publish SESSION=<session id> LANG=<language code> TEXT="..."' >&2; exit 2; }
	@$(PY) tools/publish.py --endpoint '$(PUBLISH_ENDPOINT)' --function '$(FUNCTION)' '$(SESSION)' '$(LISTEN_LANG)' '$(subst ','\'',$(TEXT))'

# Chromium where it can be installed (root with apt-get); elsewhere the browser
# tests skip with a reason saying how to enable them. Playwright comes with the
# venv (requirements-dev.txt); its own browser download is never used.
browser-deps: $(STAMP) ## Install Chromium for the browser tests where possible (root on Debian)
	@if [ -n "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (apt-get) for the browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || echo "chromium could not be installed: the browser tests will be skipped" >&2; \
	else echo "chromium not found and not root with apt-get: the browser tests will be skipped (sudo make browser-deps, or CHROMIUM=/path/to/chromium)" >&2; fi

# `make test` installs what the browser tests need first, where it can.
test: browser-deps

test-browser: browser-deps ## Run the browser tests (Chromium) and the pages' unit tests (node)
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)
