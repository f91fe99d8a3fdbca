"""The executor's shortcut for plain leaves answers exactly as graphql-core does, errors too,
and documents are parsed and validated once per text."""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, ValidationRule

from schema.documents import CachedDocuments, Documents
from schema.execution import Execution


@strawberry.enum
class Mood(enum.Enum):
    CALM = "calm"
    TENSE = "tense"


@strawberry.type
class Item:
    name: str
    count: int
    maybe: str | None
    mood: Mood
    tags: list[str]
    must: str  # None in some rows: graphql-core's null error, not a crash

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def fragile(self) -> str:
        raise RuntimeError("no shout today")

    @strawberry.field
    async def later(self) -> int:
        await asyncio.sleep(0)
        return self.count + 1


class Unreadable(Item):
    """An Item whose plain `maybe` fails as it is read."""

    @property
    def maybe(self) -> str | None:
        raise RuntimeError("no value today")

    @maybe.setter
    def maybe(self, _: str | None) -> None:
        pass


def item(name: str, count: Any = 1, must: Any = "here", maybe: str | None = None) -> Item:
    return Item(name=name, count=count, maybe=maybe, mood=Mood.CALM, tags=["a", "b"], must=must)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [item("one"), item("two", maybe="yes"), item("three", count=2**40)]

    @strawberry.field
    def holes(self) -> list[Item | None]:
        unreadable = Unreadable(
            name="unreadable", count=1, maybe=None, mood=Mood.TENSE, tags=[], must=""
        )
        return [item("fine"), item("nothing", must=None), item("odd", count="many"), unreadable]


PLAIN = strawberry.Schema(Query)
FAST = strawberry.Schema(Query, execution_context_class=Execution)

QUERIES = [
    "{ items { name count maybe mood tags shout later } }",
    "{ items { n: name, c: count, n2: name, __typename } }",
    "{ holes { name must } }",
    "{ holes { name count } }",
    "{ holes { name maybe } }",
    "{ items { name fragile } }",
    "{ holes { ...F } } fragment F on Item { name mood must maybe }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_answers_as_graphql_core_does(query: str) -> None:
    expected = await PLAIN.execute(query)
    actual = await FAST.execute(query)
    assert actual.data == expected.data
    assert [e.formatted for e in actual.errors or []] == [
        e.formatted for e in expected.errors or []
    ]


async def test_shortcut_errors_are_located() -> None:
    """A null in a non-null leaf and a value its scalar refuses each null their item."""
    result = await FAST.execute("{ holes { name must count } }")
    assert result.data == {
        "holes": [
            {"name": "fine", "must": "here", "count": 1},
            None,
            None,
            {"name": "unreadable", "must": "", "count": 1},
        ]
    }
    assert sorted(tuple(e.path or ()) for e in result.errors or []) == [
        ("holes", 1, "must"),
        ("holes", 2, "count"),
    ]


def test_documents_parse_each_text_once_within_the_bound() -> None:
    documents = Documents(maxsize=2, max_tokens=100)
    first = documents.parse("{ a }")
    assert documents.parse("{ a }") is first
    documents.parse("{ b }")
    documents.parse("{ c }")  # the bound pushes "{ a }" out
    assert documents.parse("{ a }") is not first


def test_documents_refuse_too_many_tokens_every_time() -> None:
    documents = Documents(maxsize=2, max_tokens=5)
    for _ in range(2):
        with pytest.raises(GraphQLError, match="more than 5 tokens"):
            documents.parse("{ a b c d e f g }")


def test_each_document_is_validated_once() -> None:
    validations: list[str] = []

    class Counted(ValidationRule):
        def enter_document(self, *_: object) -> None:
            validations.append("validated")

    documents = Documents(maxsize=8, max_tokens=1_000)

    class Rules(strawberry.extensions.SchemaExtension):
        def on_operation(self):  # type: ignore[no-untyped-def]
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                Counted,
            )
            yield

    schema = strawberry.Schema(Query, extensions=[Rules, lambda: CachedDocuments(documents)])
    for _ in range(3):
        assert schema.execute_sync("{ items { name } }").errors is None
        errors = schema.execute_sync("{ items { nope } }").errors
        assert errors is not None
        assert errors[0].message.startswith("Cannot query field 'nope' on type 'Item'.")
    assert validations == ["validated", "validated"]
