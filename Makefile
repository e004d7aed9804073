# One virtualenv for everything; `make demo` and `make test` are the README's two commands.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint
demo: $(VENV)/.installed
	$(BIN)/renewd check --config config.example.yaml
	$(BIN)/renewd run --config config.example.yaml --date 2026-11-30
	@# exit 3: deletions held, as both days read the same example file (README, "make demo")
	$(BIN)/renewd run --config config.example.yaml --date 2026-12-01 || [ $$? -eq 3 ]
	$(BIN)/renewd runs --config config.example.yaml

test: lint .peers/node_modules/.bin/prism
	$(BIN)/pytest -q -n auto --maxprocesses=4

# Prism serves Twilio's published API description for the SMS contract tests.
.peers/node_modules/.bin/prism:
	npm install --prefix .peers --no-audit --no-fund @stoplight/prism-cli@5.14.2

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy
	$(BIN)/lint-imports

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "renewd needs Python 3.11 or 3.12 (durable_rules 2.0.28 does not import on 3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@
