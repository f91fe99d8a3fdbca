# Two commands for a fresh machine: `make serve` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: serve test lint bench schema clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make serve PORT=8080` listens on another port than THREADQL_PORT's (8000 by default).
serve: $(STAMP)
	$(BIN)/threadql serve $(if $(PORT),--port $(PORT))

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

schema: $(STAMP)
	$(BIN)/threadql export-schema --output schema.graphql

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
