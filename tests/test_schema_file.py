"""The committed schema.graphql is the schema the server runs."""

from __future__ import annotations

from pathlib import Path

from schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", (
        "schema.graphql is out of date: run `make schema` (threadql export-schema -o schema.graphql)"
    )


def test_schema_has_the_public_contract() -> None:
    printed = schema.as_str()
    for line in (
        "interface Node {",
        "type Thread implements Node {",
        "type Comment implements Node {",
        "type User implements Node {",
        "comments(first: Int = 20, after: String = null, orderBy: CommentOrder = OLDEST): CommentConnection!",
        "replies(first: Int = 10, after: String = null, orderBy: CommentOrder = OLDEST): CommentConnection!",
        "excerpt(maxLength: Int = 280): Excerpt!",
        "thread(id: ID = null, key: String = null): Thread",
        "threads(first: Int = 20, after: String = null): ThreadConnection!",
        "enum CommentOrder {",
        "enum CommentState {",
    ):
        assert line in printed, line
