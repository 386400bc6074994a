# The two Quickstart commands: `make run` and `make test` (see README.md). Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := examples/demo.toml
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test demo test-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed tests/js/package-lock.json
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# axe-core, which the console's browser tests run in Chromium; the service itself never needs npm.
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/js --no-audit --no-fund --silent; \
	else echo "npm missing: the console's accessibility checks will skip and say why"; fi
	touch $@

# gazette.toml (git-ignored) points at the demo, so that `.venv/bin/gazette ...` works without --config.
gazette.toml:
	ln -s $(DEMO) gazette.toml

demo: $(VENV)/.installed gazette.toml
	$(BIN)/python examples/build_demo.py var/demo
	$(BIN)/gazette --config $(DEMO) db upgrade
	$(BIN)/gazette --config $(DEMO) subscribers import examples/subscribers.csv --confirmed
	$(BIN)/gazette --config $(DEMO) ingest
	@# The console's demo account (README): an admin, made once.
	@echo 'gazette-demo-2026' | $(BIN)/gazette --config $(DEMO) users add admin@hanbit-ilbo.example --role admin \
		--password-stdin --if-missing
	@# The analytics export is added once: importing it again would count its views twice.
	@if [ ! -f var/.demo-views-imported ]; then $(BIN)/gazette --config $(DEMO) views import var/demo/views.csv \
		&& touch var/.demo-views-imported; fi

run: demo
	$(BIN)/gazette --config $(DEMO) serve --host $(HOST) --port $(PORT)

# Browser tests drive Debian's chromium with a Korean font; mail tests score with SpamAssassin and check DKIM with
# OpenDKIM's tools; the deploy test runs the nginx site of deploy/. Install them where we may (root + apt); elsewhere
# those tests skip and say why.
TEST_PACKAGES := chromium fonts-nanum spamassassin opendkim-tools nginx-light
test-deps:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi nanum \
		&& command -v spamassassin >/dev/null 2>&1 && command -v opendkim-testmsg >/dev/null 2>&1 \
		&& command -v nginx >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(TEST_PACKAGES) for the browser, mail and deploy tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES) >/dev/null; \
	else echo "some of $(TEST_PACKAGES) missing and not root: those tests will skip and say why"; fi

# The suite in one worker per core (pytest-xdist); tests marked `alone` (they measure time) run while no other does.
test: $(VENV)/.installed-test test-deps
	$(BIN)/python -m pytest -n auto

clean:
	rm -rf $(VENV) var build *.egg-info
