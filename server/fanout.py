"""Live fan-out: subscribers whose results cannot differ share one execution per event.

Strawberry's graphql-transport-ws handler runs `schema.stream` once per operation, so each
event's selection would run, and be encoded, once per subscriber. Subscriptions with the
same document, variables, operation name and server URL (its avatars' links), that read no
field marked as the viewer's (`schema.audience`) or whose subscriber is anonymous, join a
group instead: one stream for the group, each result encoded once and offered to every
member's bounded queue, a turn for each (`server.broker.Turns`). A member sends it under its
own operation id. Everything else takes Strawberry's own path.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson
from graphql import GraphQLSyntaxError, OperationType, get_operation_ast, parse
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from resolvers.context import Context
from schema import DOCUMENT_CACHE_SIZE
from schema.audience import reads_viewer
from server.broker import BoundedQueue, SubscriberTooSlow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import strawberry
    from graphql import GraphQLSchema
    from strawberry.schema import BaseSchema
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation


@dataclass(frozen=True, slots=True)
class Key:
    """All that decides the results of a shareable subscription."""

    query: str
    variables: bytes  # JSON, keys sorted
    operation_name: str | None
    base_url: str


class _Audience(enum.Enum):
    NOBODY = "nobody"  # not a subscription, or a document Strawberry will refuse
    ANONYMOUS = "anonymous"  # reads the viewer: shared by anonymous subscribers only
    ANYONE = "anyone"


def _audience(
    schema: GraphQLSchema, max_tokens: int, query: str, operation_name: str | None
) -> _Audience:
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLSyntaxError:
        return _Audience.NOBODY
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
        return _Audience.NOBODY
    return _Audience.ANONYMOUS if reads_viewer(schema, document, operation) else _Audience.ANYONE


def _encoded(result: ExecutionResult) -> ExecutionResult:
    """The result with its data encoded once for all members: the view encodes frames with
    orjson, which copies a Fragment into each as it is."""
    if result.data is None:
        return result
    data = cast("dict[str, Any]", orjson.Fragment(orjson.dumps(result.data)))
    return replace(result, data=data)


class Fanout:
    """The groups of one view."""

    def __init__(self, schema: BaseSchema, queue_size: int, max_tokens: int) -> None:
        self.schema = schema
        self.queue_size = queue_size  # results a member may fall behind before it is cut off
        self.max_tokens = max_tokens
        # The GraphQL schema holds the marks: Strawberry's own schema is built on it.
        graphql_schema = cast("strawberry.Schema", schema)._schema
        self._audience = functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(
            functools.partial(_audience, graphql_schema, max_tokens)
        )
        self._open: dict[Key, _Group] = {}  # the groups a new subscriber may join
        self._running: set[_Group] = set()

    def key(self, operation: Operation[Context, None], context: Context) -> Key | None:
        """The operation's group, or None if its results may differ from another's."""
        query: object = operation.query  # as the client sent them: any JSON value
        name: object = operation.operation_name
        if not isinstance(query, str) or not isinstance(name, str | None):
            return None
        audience = self._audience(query, name)
        if audience is _Audience.NOBODY or (
            audience is _Audience.ANONYMOUS and context.viewer is not None
        ):
            return None
        variables = orjson.dumps(operation.variables, option=orjson.OPT_SORT_KEYS)
        return Key(query, variables, name, context.base_url)

    @asynccontextmanager
    async def join(
        self, key: Key, variables: dict[str, object] | None, context: Context
    ) -> AsyncIterator[AsyncIterator[ExecutionResult]]:
        """The group's results from now on, until the block or the group ends."""
        group = self._open.get(key)
        if group is None:
            group = self._open[key] = _Group(self, key, variables, context)
            self._running.add(group)
        member = BoundedQueue[ExecutionResult](self.queue_size, context.close_for_missed_updates)
        group.members[member] = context
        try:
            yield member.items()
        finally:
            group.leave(member)

    def close(self, group: _Group) -> None:
        """Let no one else join the group."""
        if self._open.get(group.key) is group:
            del self._open[group.key]

    def ended(self, group: _Group) -> None:
        self.close(group)
        self._running.discard(group)

    def subscriber_count(self) -> int:
        return sum(len(group.members) for group in self._running)


@dataclass(kw_only=True)
class _GroupContext(Context):
    """Anonymous, since members may be anyone; updates it misses, every member misses."""

    group: _Group

    def close_for_missed_updates(self) -> None:
        self.group.missed()


class _Group:
    """The members of one key and the stream that serves them all."""

    def __init__(
        self, fanout: Fanout, key: Key, variables: dict[str, object] | None, first: Context
    ) -> None:
        self.fanout = fanout
        self.key = key
        self.members: dict[BoundedQueue[ExecutionResult], Context] = {}
        # The first member's request stands for the group's where the app is looked up.
        self.context = _GroupContext(
            storage=first.storage,
            broker=first.broker,
            settings=first.settings,
            request=first.request,
            response=None,
            base_url=first.base_url,
            group=self,
        )
        self.task = asyncio.create_task(self._run(variables))

    async def _run(self, variables: dict[str, object] | None) -> None:
        try:
            results = await self.fanout.schema.stream(
                self.key.query,
                variable_values=variables,
                context_value=self.context,
                operation_name=self.key.operation_name,
            )
            async with aclosing(results):
                async for result in results:
                    # A subscription's results are whole, never incremental.
                    await self._offer(cast("ExecutionResult", result))
        finally:
            self.fanout.ended(self)
            for member in self.members:
                member.end()

    async def _offer(self, result: ExecutionResult) -> None:
        if result.errors:
            # Maybe the last result: a later subscriber must not join a group that is ending.
            self.fanout.close(self)
        shared = _encoded(result)
        for member in list(self.members):
            # A turn for each member's send: a large group's are spread over many turns.
            await self.context.broker.turn()
            if not member.offer(shared):
                self.members.pop(member, None)

    def missed(self) -> None:
        """The group fell behind its broker subscription, or the broker dropped."""
        self.fanout.close(self)
        for context in self.members.values():
            context.close_for_missed_updates()

    def leave(self, member: BoundedQueue[ExecutionResult]) -> None:
        self.members.pop(member, None)
        if not self.members:
            self.fanout.close(self)
            self.task.cancel()


class FanoutView(Protocol):
    fanout: Fanout


class FanoutHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with shareable subscriptions served by the view's `Fanout`.

    `run_operation` is where Strawberry's handler runs one operation; subscribing, the limit
    of operations per connection, completion and teardown all stay Strawberry's.
    """

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        fanout = cast("FanoutView", self.view).fanout
        key = fanout.key(operation, self.context)
        if key is None:
            await super().run_operation(operation)
            return
        try:
            async with fanout.join(key, operation.variables, self.context) as results:
                async for result in results:
                    if isinstance(result, PreExecutionError):
                        await operation.send_initial_errors(result.errors or [])
                        return
                    await operation.send_next(result)
        except SubscriberTooSlow:
            return  # its socket is already closing with 1013
        await operation.send_operation_message({"id": operation.id, "type": "complete"})
