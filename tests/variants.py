"""Fields the schema does not have, added to a running app's schema to test what must hold
for any field of their kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphql import GraphQLObjectType
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from schema.audience import PER_VIEWER
from schema.types import Comment, Info  # noqa: TC001 - Strawberry reads the resolver's annotations

if TYPE_CHECKING:
    from starlette.applications import Starlette


def salutation(root: Comment, info: Info) -> str | None:
    """The reader's own name: its value depends on the viewer, and its name says nothing of
    it (as `canReply` or a moderator's field would not)."""
    viewer = info.context.viewer
    return f"Hello, {viewer.name}" if viewer else None


def add_salutation(app: Starlette) -> None:
    """`Comment.salutation`, marked as the viewer's, in the schema `app` serves (over HTTP
    and WebSocket), converted by Strawberry as any field of Comment is."""
    schema = app.state.fanout.schema
    definition = schema.get_type_by_name("Comment")
    assert isinstance(definition, StrawberryObjectDefinition)
    field = StrawberryField(
        python_name="salutation",
        origin=definition.origin,
        base_resolver=StrawberryResolver(salutation),
        metadata=PER_VIEWER,
    )
    comment = schema._schema.get_type("Comment")
    assert isinstance(comment, GraphQLObjectType)
    comment.fields["salutation"] = schema.schema_converter.from_field(
        field, type_definition=definition
    )
