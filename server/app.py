"""The Starlette application: GraphQL, avatars, health and metrics, with storage opened in
the lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from db import open_storage
from db.demo import load_demo
from schema import QueryLimits, build_schema
from server import collector, graphiql
from server.auth import Authenticator, secret_for
from server.avatars import avatar
from server.broker import Broker, MemoryBroker
from server.cache import ResponseCache
from server.graphql import GraphQLView
from server.health import healthz, readyz
from server.logs import configure as configure_logs
from server.metrics import CountingBroker, Metrics, OperationName, metrics_endpoint
from server.pages import GraphQLCORS, page_routes
from server.persisted import PersistedQueries
from server.ratelimit import UNLIMITED, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from server.redis_broker import RedisBroker
from server.settings import PREFIX, Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from strawberry.schema import Schema

__all__ = ["create_app", "healthz", "readyz", "worker_app"]


def open_broker(settings: Settings) -> Broker:
    """In-process fan-out, or Redis pub/sub shared by every process of a deployment."""
    if settings.broker_url == "memory://":
        return MemoryBroker(settings.subscriber_queue, settings.deliveries_per_turn)
    return RedisBroker(
        settings.broker_url,
        settings.subscriber_queue,
        settings.broker_prefix,
        deliveries_per_turn=settings.deliveries_per_turn,
    )


def open_limiter(settings: Settings) -> RateLimiter:
    """Buckets in the broker's Redis when there is one, so that every process spends from
    the same budget; else in this process."""
    if not settings.rate_limits:
        return UNLIMITED
    if settings.broker_url == "memory://":
        return MemoryRateLimiter()
    return RedisRateLimiter(settings.broker_url, settings.broker_prefix + "rate:")


def open_persisted(settings: Settings) -> PersistedQueries | None:
    """Documents in the broker's Redis when there is one, so that every process knows them."""
    if not settings.persisted_queries:
        return None
    redis_url = None if settings.broker_url == "memory://" else settings.broker_url
    return PersistedQueries(
        settings.persisted_query_count,
        settings.persisted_query_bytes,
        redis_url,
        settings.broker_prefix + "apq:",
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    storage = open_storage(settings.database_url)
    broker = open_broker(settings)
    limiter = open_limiter(settings)
    persisted = open_persisted(settings)
    cache = (
        ResponseCache(storage, settings.response_cache_entries, settings.response_cache_bytes)
        if settings.response_cache
        else None
    )
    secret = secret_for(settings.jwt_secret, Path(settings.data_dir))
    authenticator = Authenticator(secret, storage)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.open()
        try:
            await storage.migrate()
            if settings.demo:
                await load_demo(storage)
            if isinstance(broker, RedisBroker):
                await broker.start()
            yield
        finally:
            if isinstance(broker, RedisBroker):
                await broker.close()
            if isinstance(limiter, RedisRateLimiter):
                await limiter.close()
            if persisted is not None:
                await persisted.close()
            await storage.close()

    limits = QueryLimits(
        max_nodes=settings.max_nodes,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_directives=settings.max_directives,
        max_document_bytes=settings.max_document_bytes,
    )
    metrics = Metrics()
    schema = build_schema(
        limits,
        production=settings.env == "production",
        plans=settings.query_plans,
        on_plan_abandoned=metrics.plan_fallback,
    )
    schema.extensions = (*schema.extensions, OperationName)
    if settings.tracing:
        add_tracing(schema)
    graphql = GraphQLView(
        schema,
        storage,
        CountingBroker(broker, metrics),
        authenticator,
        settings,
        cache=cache,
        persisted=persisted,
        metrics=metrics,
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/avatars/{name:path}.svg", avatar),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            *page_routes(settings, secret),
            graphiql.route(),
        ],
        middleware=[Middleware(GraphQLCORS)],
        lifespan=lifespan,
    )
    app.state.storage = storage
    app.state.broker = broker
    app.state.fanout = graphql.fanout  # subscribers sharing one execution per event
    app.state.settings = settings
    app.state.limiter = limiter  # each request's Context takes it from here
    app.state.response_cache = cache
    app.state.persisted_queries = persisted
    app.state.metrics = metrics
    return app


def add_tracing(schema: Schema) -> None:
    """A span for each operation and its phases, through OpenTelemetry's configured exporter."""
    try:
        from strawberry.extensions.tracing import OpenTelemetryExtension  # noqa: PLC0415
    except ImportError as error:
        raise SettingsError(
            f"{PREFIX}TRACING=true needs OpenTelemetry: install opentelemetry-api and"
            f" opentelemetry-sdk, or leave tracing off ({error})"
        ) from error
    schema.extensions = (*schema.extensions, OpenTelemetryExtension)


def worker_app() -> Starlette:
    """The app of one worker process of `threadql serve --workers N`: each process reads
    the settings and sets up its logging itself."""
    settings = Settings.from_env()
    configure_logs(settings.logs)
    app = create_app(settings)
    collector.settle()
    return app
