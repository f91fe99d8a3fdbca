"""Prometheus metrics of one app, in a registry of its own so that several apps in one
process (tests, the bench) never share or collide."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from contextlib import AbstractAsyncContextManager

    from starlette.requests import Request

    from server.broker import Broker, Event

OUTCOMES = ("ok", "error", "refused")
# Clients name their operations: past this many distinct names, new ones share one label,
# so that no client can grow the series without bound.
MAX_OPERATION_NAMES = 200
OTHER = "other"
ANONYMOUS = "anonymous"
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "threadql_graphql_requests",
            "GraphQL requests over HTTP by operation name and outcome (ok, error, refused).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "threadql_graphql_request_duration_seconds",
            "Time to answer a GraphQL request over HTTP.",
            ["operation"],
            registry=registry,
        )
        self.statements = Histogram(
            "threadql_graphql_request_sql_statements",
            "SQL statements one GraphQL request over HTTP executed.",
            buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, float("inf")),
            registry=registry,
        )
        self.websockets = Gauge(
            "threadql_websocket_connections", "Open WebSocket connections.", registry=registry
        )
        self.subscriptions = Gauge(
            "threadql_subscriptions",
            "Broker subscriptions in this process: one for each execution that subscribers"
            " share, and one for each subscriber executed on its own.",
            registry=registry,
        )
        self.published = Counter(
            "threadql_broker_published", "Events published by this process.", registry=registry
        )
        self.delivered = Counter(
            "threadql_broker_delivered",
            "Events delivered to subscribers of this process.",
            registry=registry,
        )
        self.rate_limited = Counter(
            "threadql_rate_limit_refusals",
            "Writes refused by a rate limit, by bucket.",
            ["bucket"],
            registry=registry,
        )
        self.plan_fallbacks = Counter(
            "threadql_plan_fallbacks",
            "Queries whose plan met a value it does not expect and that graphql-core answered"
            " instead; each one is a mistake of ours worth a look.",
            registry=registry,
        )
        self._operations: set[str] = set()
        # Each label's own series, looked up once: `labels()` checks and locks every time.
        self._series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def operation(self, name: object) -> str:
        """The label for an operation name: bounded in length, count and characters."""
        if not name:
            return ANONYMOUS
        if not isinstance(name, str):
            return OTHER
        if name in self._operations:
            return name
        if not _NAME.fullmatch(name) or len(self._operations) >= MAX_OPERATION_NAMES:
            return OTHER
        self._operations.add(name)
        return name

    def observe_request(
        self, operation: object, outcome: str, seconds: float, statements: int
    ) -> None:
        label = self.operation(operation)
        series = self._series.get((label, outcome))
        if series is None:
            series = (self.requests.labels(label, outcome), self.duration.labels(label))
            self._series[label, outcome] = series
        requests, duration = series
        requests.inc()
        duration.observe(seconds)
        self.statements.observe(statements)

    def refused(self, bucket: str) -> None:
        self.rate_limited.labels(bucket).inc()

    def plan_fallback(self) -> None:
        self.plan_fallbacks.inc()

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class CountingBroker:
    """The broker as the GraphQL view uses it: publications, deliveries and subscriptions
    are counted on the way through."""

    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self.inner = broker
        self.metrics = metrics

    async def publish(self, event: Event) -> None:
        self.metrics.published.inc()
        await self.inner.publish(event)

    def subscribe(
        self, thread_id: int, on_overflow: Callable[[], None]
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        return self._subscribe(thread_id, on_overflow)

    @asynccontextmanager
    async def _subscribe(
        self, thread_id: int, on_overflow: Callable[[], None]
    ) -> AsyncIterator[AsyncIterator[Event]]:
        async with self.inner.subscribe(thread_id, on_overflow) as events:
            self.metrics.subscriptions.inc()
            try:
                yield self._counted(events)
            finally:
                self.metrics.subscriptions.dec()

    async def _counted(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        async for event in events:
            self.metrics.delivered.inc()
            yield event

    async def turn(self) -> None:
        await self.inner.turn()

    def subscriber_count(self) -> int:
        return self.inner.subscriber_count()


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return metrics.render()


class OperationName(SchemaExtension):
    """Names the request's operation once its document is parsed, for an unnamed request
    whose document holds one named operation too."""

    def on_validate(self) -> Iterator[None]:
        request = getattr(self.execution_context.context, "request", None)
        if request is not None:
            request.state.operation = self.execution_context.operation_name
        yield
