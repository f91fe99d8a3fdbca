"""One backend's pass: its dataset, statement counts and plans, then W1, W2 and W4 (and W5,
when asked) against one `threadql serve` worker, then W6 across two processes and Redis.

The SQL counts and plans come from inside this process; the throughput from real servers
in others, so that the load generator and the server do not share an event loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from bench import dataset, delivery, inprocess, plans
from bench.crossprocess import measure_cross_process
from bench.load import CLIENTS
from bench.queries import WORKLOADS, checked_data, count_comments
from bench.report import Row
from bench.server import running_server
from bench.writes import WRITERS, measure_writes

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bench.delivery import DeliveryResult
    from bench.load import LoadGenerator
    from bench.writes import WriteResult


@dataclass(frozen=True)
class Backend:
    name: str  # as the tables show it
    url: str
    slug: str  # names its folder of server logs


@dataclass(frozen=True)
class Setup:
    """What every pass shares."""

    workdir: Path
    generator: LoadGenerator
    secret: str
    seconds: float
    redis_url: str | None  # None: W6 is skipped


@dataclass
class Results:
    backend: str
    reads: list[Row]
    writes: WriteResult
    local: list[DeliveryResult] = field(default_factory=list)  # W5
    cross: list[DeliveryResult] = field(default_factory=list)  # W6


def measure(backend: Backend, setup: Setup, *, local_delivery: bool) -> Results:
    """Prepare a fresh database at `backend.url` and run every workload against it."""
    print(f"{backend.name}: preparing the dataset …", flush=True)
    asyncio.run(dataset.prepare(backend.url))
    counted = asyncio.run(inprocess.count_statements(backend.url, WORKLOADS))
    big = WORKLOADS[1]
    print(asyncio.run(plans.page_plans(backend.url, big.thread_key, big.first, big.replies_first)))

    logs = setup.workdir / backend.slug
    logs.mkdir()
    env = {
        "THREADQL_JWT_SECRET": setup.secret,
        "THREADQL_SUBSCRIBER_QUEUE": str(delivery.SUBSCRIBER_QUEUE),
    }
    with running_server(backend.url, logs / "server.log", env) as base_url:
        graphql_url = f"{base_url}/graphql"
        reads = _load_all(backend.name, setup.generator, graphql_url, counted, setup.seconds)
        print(f"{backend.name} W4 addComment: {WRITERS} writers, {setup.seconds:g} s …", flush=True)
        writes = asyncio.run(measure_writes(graphql_url, setup.secret, setup.seconds))
        results = Results(backend.name, reads, writes)
        if local_delivery:
            results.local = asyncio.run(delivery.measure_delivery(graphql_url, setup.secret))

    if setup.redis_url is not None:
        print(f"{backend.name} W6: two processes, events through Redis …", flush=True)
        results.cross = measure_cross_process(backend.url, setup.redis_url, setup.secret, env, logs)
    return results


def _load_all(
    backend: str,
    generator: LoadGenerator,
    url: str,
    counted: Sequence[inprocess.Counted],
    seconds: float,
) -> list[Row]:
    rows = []
    for workload, count in zip(WORKLOADS, counted, strict=True):
        body = json.dumps(workload.body).encode("utf-8")
        _check_over_http(url, body, count.comments)
        print(f"{backend} {workload.name}: {CLIENTS} clients, {seconds:g} s …", flush=True)
        load = generator.run(url, body, seconds)
        rows.append(Row(workload.name, backend, count.comments, count.statements, load))
    return rows


def _check_over_http(url: str, body: bytes, comments: int) -> None:
    """The load generators look at status codes only, so the answer itself is checked first."""
    response = httpx.post(
        url, content=body, headers={"content-type": "application/json"}, timeout=60
    )
    response.raise_for_status()
    returned = count_comments(checked_data(response.json()))
    if returned != comments:
        raise RuntimeError(f"the server returned {returned} comments, in-process {comments}")
