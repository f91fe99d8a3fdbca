"""The GraphQL schema of threadql, built with the limits a deployment sets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig

from schema.documents import CachedDocuments, Documents
from schema.execution import Execution
from schema.limits import QueryLimits
from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription
from schema.types import Comment, Thread, User

if TYPE_CHECKING:
    from collections.abc import Callable

    from strawberry.types import ExecutionContext

log = logging.getLogger("threadql.errors")

DOCUMENT_CACHE_SIZE = 512  # distinct documents kept parsed and validated


def unexpected(error: GraphQLError) -> bool:
    """An error of ours, not of the client's: its message is not for the client."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def request_id(execution_context: ExecutionContext | None) -> str | None:
    context = execution_context.context if execution_context else None
    request = getattr(context, "request", None)
    return getattr(getattr(request, "state", None), "request_id", None)


class MaskUnexpectedErrors(MaskErrors):
    """ "Unexpected error." and a request id for clients; the details go to the log."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(
            "Unexpected error.",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={
                "code": "INTERNAL_SERVER_ERROR",
                "requestId": request_id(self.execution_context),
            },
        )


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what went wrong on our side; a client's mistake is answered, not logged."""
        for error in errors:
            if unexpected(error):
                log.error(
                    "request %s failed at %s: %s",
                    request_id(execution_context),
                    ".".join(map(str, error.path or [])),
                    error.message,
                    exc_info=error.original_error,
                )


def build_schema(
    limits: QueryLimits | None = None, *, production: bool = False, plans: bool = True
) -> Schema:
    """Production hides the schema: no introspection, no "Did you mean" suggestions.
    Without `plans`, graphql-core executes every operation its own way (tests compare)."""
    limits = limits or QueryLimits()
    documents = Documents(DOCUMENT_CACHE_SIZE, limits.max_tokens)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: CachedDocuments(documents),
        *limits.extensions(),
        MaskUnexpectedErrors,
    ]
    if production:
        extensions.insert(1, DisableIntrospection)
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Thread, Comment, User],
        extensions=extensions,
        execution_context_class=Execution if plans else None,
        config=StrawberryConfig(disable_field_suggestions=production),
    )


schema = build_schema()

__all__ = ["QueryLimits", "build_schema", "schema"]
