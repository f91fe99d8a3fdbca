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
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from schema.documents import CachedDocuments, Documents
from schema.execution import Execution, observed
from schema.limits import QueryLimits
from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription
from schema.types import Comment, Thread, User

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from strawberry.types import ExecutionContext, ExecutionResult

log = logging.getLogger("threadql.errors")

DOCUMENT_CACHE_SIZE = 512  # distinct documents kept parsed and validated


# Errors of the client's that Strawberry raises as exceptions; its WebSocket handler answers
# them (close 4400 with their text) only while they are not masked.
CLIENT_ERRORS = (GraphQLError, CannotGetOperationTypeError, InvalidOperationTypeError)


def unexpected(error: GraphQLError) -> bool:
    """An error of ours, not of the client's: its message is not for the client."""
    return error.original_error is not None and not isinstance(error.original_error, CLIENT_ERRORS)


def request_id(context: object) -> str | None:
    """The id of the request whose `info.context` is `context`, for the log and the client."""
    request = getattr(context, "request", None)
    return getattr(getattr(request, "state", None), "request_id", None)


def masked(error: GraphQLError, request: str | None) -> GraphQLError:
    """ "Unexpected error." and the request's id in place of an error of ours."""
    return GraphQLError(
        "Unexpected error.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request},
    )


class MaskUnexpectedErrors(MaskErrors):
    """ "Unexpected error." and a request id for clients; the details go to the log."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context if self.execution_context else None
        return masked(error, request_id(context))


class Schema(strawberry.Schema):
    async def execute(  # noqa: PLR0917 - the signature it wraps
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """One answer to one operation: a subscription, a stream of answers, is refused with
        `InvalidOperationTypeError` here whoever asks; `subscribe` serves it."""
        allowed = set(OperationType if allowed_operation_types is None else allowed_operation_types)
        allowed.discard(OperationType.SUBSCRIPTION)
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )
        # An extension that raised ends the operation outside the extensions, masking's too.
        if result.errors and any(map(unexpected, result.errors)):
            request = request_id(context_value)
            result.errors = [masked(e, request) if unexpected(e) else e for e in result.errors]
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what went wrong on our side; a client's mistake is answered, not logged."""
        for error in errors:
            if unexpected(error):
                log.error(
                    "request %s failed at %s: %s",
                    request_id(execution_context.context if execution_context else None),
                    ".".join(map(str, error.path or [])),
                    error.message,
                    exc_info=error.original_error,
                )


def build_schema(
    limits: QueryLimits | None = None,
    *,
    production: bool = False,
    plans: bool = True,
    on_plan_abandoned: Callable[[], None] | None = None,
) -> Schema:
    """Production hides the schema: no introspection, and no error suggests one of its names
    ("Did you mean"), neither validation's nor the variables' (`NodeLimit` coerces them, and
    refuses bad ones, before execution). Without `plans`, graphql-core executes every
    operation its own way (tests compare; `THREADQL_QUERY_PLANS=false`).
    `on_plan_abandoned` is told of each query whose plan gave way to graphql-core."""
    limits = limits or QueryLimits()
    documents = Documents(
        DOCUMENT_CACHE_SIZE,
        limits.max_tokens,
        limits.max_document_bytes,
        hide_suggestions=production,
    )
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: CachedDocuments(documents),  # first: the limits read what it validates
        *limits.extensions(hide_suggestions=production),
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
        execution_context_class=executor(plans, on_plan_abandoned),
    )


def executor(plans: bool, on_plan_abandoned: Callable[[], None] | None) -> type[Execution] | None:
    """Plans, observed or not; or graphql-core's own executor (None: Strawberry's default)."""
    if not plans:
        return None
    return Execution if on_plan_abandoned is None else observed(on_plan_abandoned)


schema = build_schema()

__all__ = ["QueryLimits", "build_schema", "schema"]
