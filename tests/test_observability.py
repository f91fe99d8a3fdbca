"""Readiness, metrics, request logs and the serve command's process checks."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sqlite3
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import auth
from server.app import create_app
from server.logs import JSONFormatter
from server.settings import Settings, SettingsError
from tests.live import GraphQLWebSocket, free_port, live_server
from tests.services import SECRET
from tests.test_cli import run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from starlette.applications import Starlette

    from db.sql import SQLStorage

ADD = """mutation Add($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } errors { code message } }
}"""
ADDED = "subscription Live($thread: ID!) { commentAdded(threadId: $thread) { id } }"
THREAD = 'query Demo { thread(key: "demo") { id title comments(first: 5) { nodes { id } } } }'


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


def sample(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's value in Prometheus text, 0 when the series has none yet."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                return float(s.value)
    return 0.0


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as c:
            yield application, c


async def test_ready_until_the_database_goes_and_again_when_it_returns(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    await app.state.storage.close()
    down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["database"]["ok"] is False
    assert down.json()["checks"]["broker"]["ok"] is True
    assert (await client.get("/healthz")).json() == {"status": "ok"}  # alive all the same
    await app.state.storage.open()
    assert (await client.get("/readyz")).status_code == 200


async def test_not_ready_while_migrations_are_pending(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    storage = cast("SQLStorage", app.state.storage)
    async with storage._transaction():
        await storage._write("DELETE FROM schema_migrations WHERE version = 2")
    answer = await client.get("/readyz")
    assert answer.status_code == 503
    database = answer.json()["checks"]["database"]
    assert database["error"] == "migrations are pending"
    assert database["pending"] == ["0002_imports_and_authors.sql"]


async def test_not_ready_while_redis_is_unreachable(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=sqlite_url,
        data_dir=str(tmp_path),
        broker_url=f"redis://127.0.0.1:{free_port()}",  # nothing listens there
        rate_limits=False,
        persisted_queries=False,
    )
    async with serving(settings) as (_, client):
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"] == {"ok": False, "error": "Redis is not connected"}
    assert answer.json()["checks"]["database"] == {"ok": True}


async def test_metrics_move_with_queries_mutations_and_refusals(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=sqlite_url, data_dir=str(tmp_path), jwt_secret=SECRET, comment_burst=1
    )
    async with serving(settings) as (_, client):
        before = (await client.get("/metrics")).text
        assert sample(before, "threadql_websocket_connections") == 0
        assert (await client.post("/graphql", json={"query": THREAD})).status_code == 200
        refused = await client.post("/graphql", json={"query": "{ thread(key: "})
        assert "errors" in refused.json()
        headers = {"authorization": f"Bearer {auth.mint(SECRET, sub='m', name='Em')}"}
        variables = {"input": {"threadKey": "demo", "body": "Counted."}}
        for _ in range(2):  # the second is over the burst of one
            await client.post(
                "/graphql", json={"query": ADD, "variables": variables}, headers=headers
            )
        answer = await client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    requests = "threadql_graphql_requests_total"
    assert sample(text, requests, {"operation": "Demo", "outcome": "ok"}) == 1
    assert sample(text, requests, {"operation": "anonymous", "outcome": "refused"}) == 1
    assert sample(text, requests, {"operation": "Add", "outcome": "ok"}) == 2
    duration = "threadql_graphql_request_duration_seconds_count"
    assert sample(text, duration, {"operation": "Demo"}) == 1
    assert sample(text, "threadql_graphql_request_sql_statements_count") == 4
    assert sample(text, "threadql_graphql_request_sql_statements_sum") > 0
    assert sample(text, "threadql_rate_limit_refusals_total", {"bucket": "comments"}) == 1
    assert sample(text, "threadql_broker_published_total") == 1


async def test_metrics_count_websockets_subscriptions_and_deliveries(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url, data_dir=str(tmp_path), jwt_secret=SECRET, rate_limits=False
    )
    async with live_server(settings) as live, httpx.AsyncClient(base_url=live.url) as http:

        async def metric(name: str) -> float:
            return sample((await http.get("/metrics")).text, name)

        thread = (await http.post("/graphql", json={"query": THREAD})).json()["data"]["thread"]
        registry = live.app.state.metrics.registry
        async with GraphQLWebSocket.connect(live.ws_url) as ws:
            operation = await ws.subscribe(ADDED, {"thread": thread["id"]})
            await until(lambda: registry.get_sample_value("threadql_subscriptions") == 1)
            assert await metric("threadql_websocket_connections") == 1
            assert await metric("threadql_subscriptions") == 1
            headers = {"authorization": f"Bearer {auth.mint(SECRET, sub='w', name='Wes')}"}
            variables = {"input": {"threadKey": "demo", "body": "Live."}}
            await http.post(
                "/graphql", json={"query": ADD, "variables": variables}, headers=headers
            )
            await ws.next_data(operation)
            assert await metric("threadql_broker_published_total") == 1
            assert await metric("threadql_broker_delivered_total") == 1
        await until(lambda: registry.get_sample_value("threadql_websocket_connections") == 0)
        assert await metric("threadql_websocket_connections") == 0
        assert await metric("threadql_subscriptions") == 0


async def test_each_app_keeps_its_own_metrics(sqlite_url: str, tmp_path: Path) -> None:
    first = create_app(Settings(database_url=sqlite_url, data_dir=str(tmp_path)))
    second = create_app(Settings(database_url=sqlite_url, data_dir=str(tmp_path)))
    assert first.state.metrics.registry is not second.state.metrics.registry


async def test_statements_are_counted_for_each_request_apart(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Requests running at once each count only their own statements."""
    settings = Settings(database_url=sqlite_url, data_dir=str(tmp_path), response_cache=False)
    caplog.set_level(logging.INFO, logger="threadql.request")
    async with serving(settings) as (_, client):
        await client.post("/graphql", json={"query": THREAD})
        alone = [r.__dict__["statements"] for r in caplog.records]
        assert alone[0] > 0
        caplog.clear()
        await asyncio.gather(*(client.post("/graphql", json={"query": THREAD}) for _ in range(8)))
    together = [r.__dict__["statements"] for r in caplog.records]
    assert together == alone * 8


async def test_request_log_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="threadql.request")
    answer = await client.post("/graphql", json={"query": THREAD})
    request_id = answer.headers["X-Request-Id"]
    formatter = JSONFormatter()
    lines: list[dict[str, Any]] = [
        json.loads(formatter.format(r)) for r in caplog.records if r.name == "threadql.request"
    ]
    [line] = [line for line in lines if line["request_id"] == request_id]
    assert line["operation"] == "Demo"
    assert line["status"] == 200
    assert line["outcome"] == "ok"
    assert line["statements"] > 0
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info"


def test_log_format_defaults_by_environment() -> None:
    assert Settings(env="production").logs == "json"
    assert Settings(env="development").logs == "text"
    assert Settings(env="production", log_format="text").logs == "text"


@pytest.mark.processes
def test_several_workers_need_redis(tmp_path: Path) -> None:
    env = {
        "THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
        "THREADQL_DATA_DIR": str(tmp_path),
    }
    result = run(["serve", "--workers", "2"], env)
    assert result.returncode == 2
    assert "THREADQL_BROKER_URL=redis://" in result.stderr


@pytest.mark.processes
def test_bad_operations_settings_stop_start_up(tmp_path: Path) -> None:
    result = run(["serve"], {"THREADQL_LOG_FORMAT": "xml"})
    assert result.returncode == 2
    assert "THREADQL_LOG_FORMAT" in result.stderr
    if importlib.util.find_spec("opentelemetry") is None:
        result = run(["serve"], {"THREADQL_TRACING": "true"})
        assert result.returncode == 2
        assert "THREADQL_TRACING" in result.stderr


OVERSIZED = 'query Likes { thread(key: "demo") { comments(first: 3) { nodes { likeCount } } } }'


async def test_metrics_count_plan_fallbacks(sqlite_url: str, tmp_path: Path) -> None:
    """A value no plan expects (a like count beyond Int, stored behind the API's back) sends
    the operation to graphql-core, which answers it; /metrics counts each time it happens,
    and never when plans are off."""
    for plans, fallbacks in ((True, 1), (False, 0)):
        database = tmp_path / f"plans-{plans}.db"
        settings = Settings(
            database_url=f"sqlite:///{database}",
            data_dir=str(tmp_path),
            query_plans=plans,
            response_cache=False,
        )
        async with serving(settings) as (_, client):
            with sqlite3.connect(database) as connection:
                connection.execute("UPDATE comments SET like_count = ?", (2**40,))
            body = (await client.post("/graphql", json={"query": OVERSIZED})).json()
            assert body["errors"][0]["message"].startswith("Int cannot represent")
            text = (await client.get("/metrics")).text
        assert sample(text, "threadql_plan_fallbacks_total") == fallbacks


def test_query_plans_are_switched_by_their_setting() -> None:
    assert Settings().query_plans is True
    assert Settings.from_env({"THREADQL_QUERY_PLANS": "false"}).query_plans is False
    with pytest.raises(SettingsError, match="THREADQL_QUERY_PLANS must be true or false"):
        Settings.from_env({"THREADQL_QUERY_PLANS": "sometimes"})
