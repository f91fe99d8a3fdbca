"""Which selections read a field marked as the viewer's (schema/audience.py): through aliases,
nesting, inline fragments and named ones, and on interfaces as each type declares the field."""

from __future__ import annotations

import pytest
import strawberry
from graphql import GraphQLObjectType, get_operation_ast, parse

from schema import schema
from schema.audience import PER_VIEWER, reads_viewer
from schema.plans import plain_leaf


@strawberry.type
class Shelf:
    title: str
    reserved_for_me: bool = strawberry.field(metadata=PER_VIEWER)


@strawberry.interface
class Item:
    name: str


@strawberry.type
class Book(Item):
    shelf: Shelf

    can_borrow: bool = strawberry.field(resolver=lambda: False, metadata=PER_VIEWER)


@strawberry.type
class Film(Item):
    length: int


@strawberry.type
class Library:
    items: list[Item]
    first: Book


LIBRARY = strawberry.Schema(Library, types=[Book, Film])


def reads(query: str, operation_name: str | None = None) -> bool:
    document = parse(query)
    operation = get_operation_ast(document, operation_name)
    assert operation is not None
    return reads_viewer(LIBRARY._schema, document, operation)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ first { name } }", False),
        ("{ first { canBorrow } }", True),
        ("{ first { mine: canBorrow } }", True),
        ("{ first { canBorrow: name } }", False),
        ("{ first { shelf { title } } }", False),
        ("{ first { shelf { reservedForMe } } }", True),
        ("{ items { __typename name ... on Film { length } } }", False),
        ("{ items { ... on Book { canBorrow } } }", True),
        ("{ items { ... { ... on Book { shelf { reservedForMe } } } } }", True),
        ("{ items { ...B } } fragment B on Book { shelf { reservedForMe } }", True),
        ("{ items { ...F } } fragment F on Film { length }", False),
        ("{ items { ...I } } fragment I on Item { ... on Book { canBorrow } }", True),
        ("{ first { ...A } } fragment A on Book { ...A name }", False),
        (
            "{ first { ...A ...A } } fragment A on Book { name ...B } fragment B on Book { canBorrow }",
            True,
        ),
        ("{ first { nothing { canBorrow } } }", False),
    ],
)
def test_a_selection_reads_the_viewer_where_it_reaches_a_marked_field(
    query: str, expected: bool
) -> None:
    assert reads(query) is expected


def test_only_the_named_operation_is_weighed() -> None:
    document = "query Mine { first { canBorrow } } query Theirs { first { name } }"
    assert reads(document, "Mine")
    assert not reads(document, "Theirs")


def test_a_marked_attribute_stays_a_plain_leaf() -> None:
    """The mark is metadata: no resolver is added, and the compiled plans read it in place."""
    comment = schema._schema.get_type("Comment")
    assert isinstance(comment, GraphQLObjectType)
    for name in ("viewerCanEdit", "viewerCanDelete", "likeCount"):
        assert plain_leaf(comment.fields[name]) is not None, name
