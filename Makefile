# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/orderbot demo

# The browser tests drive Debian's chromium (Playwright downloads no browser); installed here when missing.
# A CJK font makes the dashboard's screenshots readable.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if ! test -x $(CHROMIUM) || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei) \
		|| echo "chromium could not be installed: the browser tests skip (and fail under CI=true)"; fi

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/lifecycle.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache
