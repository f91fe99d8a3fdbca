# Two commands for a fresh machine: `make serve` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# GraphiQL's files, fetched from the npm registry and checked against server/graphiql.py.
GRAPHIQL := $(VENV)/share/threadql/graphiql/.installed-stamp

.PHONY: serve test test-fast test-without-plans lint bench schema clean

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

# The edit loop's tier: SQLite only, no browser, no other processes; `make test` runs all.
FAST := not postgresql and not browser and not processes and not soak
test-fast: $(STAMP) $(GRAPHIQL)
	$(BIN)/python -m pytest -q -n auto -m '$(FAST)'

# The API tests again, served by graphql-core's own execution: plans must change no answer.
API_TESTS := tests/test_demo_thread.py tests/test_pagination.py tests/test_mutations.py \
	tests/test_bad_input.py tests/test_counts.py tests/test_statement_count.py \
	tests/test_execution.py::test_a_failing_field_leaves_a_shared_batch_to_the_others
test-without-plans: $(STAMP) $(GRAPHIQL)
	THREADQL_QUERY_PLANS=false $(BIN)/python -m pytest -q -n auto $(API_TESTS)

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
