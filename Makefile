# Two commands for a fresh machine: `make serve` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# GraphiQL's files, fetched from the npm registry and checked against server/graphiql.py.
GRAPHIQL := $(VENV)/share/threadql/graphiql/.installed-stamp

.PHONY: serve test lint bench schema clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(GRAPHIQL): $(STAMP) server/graphiql.py
	$(BIN)/python -m server.graphiql
	touch $(GRAPHIQL)

# `make serve PORT=8080` listens on another port than THREADQL_PORT's (8000 by default).
serve: $(STAMP) $(GRAPHIQL)
	$(BIN)/threadql serve $(if $(PORT),--port $(PORT))

test: lint $(GRAPHIQL)
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
