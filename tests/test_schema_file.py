"""The committed schema.graphql is the schema the server runs."""

from __future__ import annotations

import re
from pathlib import Path

from schema import schema
from schema.audience import per_viewer
from schema.mutation import UserErrorCode

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"
README = Path(__file__).resolve().parents[1] / "README.md"


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


def test_every_field_named_for_the_viewer_is_known_to_the_live_fan_out() -> None:
    """server/fanout.py shares a live selection between viewers only if it reads no field
    marked as the viewer's (schema/audience.py): a field named for the viewer is marked."""
    named = set(re.findall(r"^\s+(viewer\w*)[(:]", schema.as_str(), re.MULTILINE))
    assert named, "the pattern finds the viewer's fields"
    types = schema._schema.type_map.values()
    marked = {
        name
        for graphql_type in types
        for name, field in getattr(graphql_type, "fields", {}).items()
        if per_viewer(field)
    }
    assert named <= marked, named - marked


def test_the_readme_lists_every_user_error_code() -> None:
    """The README's list of the codes a mutation's refusal carries is the schema's enum."""
    readme = " ".join(README.read_text(encoding="utf-8").split())
    [listed] = re.findall(r"with `code` one of (.*?), and nothing is written", readme)
    assert re.findall(r"`(\w+)`", listed) == [code.value for code in UserErrorCode]
