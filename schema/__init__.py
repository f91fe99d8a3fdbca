"""The GraphQL schema of threadql."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache

from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription
from schema.types import Comment, Thread, User

if TYPE_CHECKING:
    from strawberry.types import ExecutionContext


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what went wrong on our side; a client's mistake is answered, not logged."""
        unexpected = [
            error
            for error in errors
            if error.original_error is not None
            and not isinstance(error.original_error, GraphQLError)
        ]
        super().process_errors(unexpected, execution_context)


# A page sends the same few documents again and again: parse and validate each once.
DOCUMENT_CACHE_SIZE = 512

schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Thread, Comment, User],
    extensions=[
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
    ],
)

__all__ = ["schema"]
