"""One backend's pass: its dataset, statement counts and plans; then the read workloads
against one `threadql serve` worker with the response cache off, and against one with the
server's defaults (the cache on), which then takes W4 (and W5, when asked); then W6 across
two processes and Redis.

The SQL counts and plans come from inside this process; the throughput from real servers
in others, so that the load generator and the server do not share an event loop. The reads
run before any write, so that every server answers them from the same data.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import httpx

from bench import dataset, delivery, inprocess, plans
from bench.crossprocess import measure_cross_process
from bench.load import CLIENTS, LoadResult
from bench.memory import ServerMemory
from bench.posting import DEMO_THREAD
from bench.queries import W2, W3, checked_data, count_comments
from bench.report import W4_LABEL
from bench.rows import Kind, Row, measured
from bench.server import running_server
from bench.writes import WRITERS, measure_writes
from server.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from bench.delivery import DeliveryResult, Run
    from bench.load import LoadGenerator
    from bench.processes import Running
    from bench.queries import Workload
    from bench.writes import WriteResult

# With this setting, a server computes every answer afresh.
CACHE_OFF = {"THREADQL_RESPONSE_CACHE": "false"}
CACHE_OFF_LABEL = "response cache off"


def has_response_cache() -> bool:
    return "response_cache" in {f.name for f in fields(Settings)}


@dataclass(frozen=True)
class Backend:
    name: str  # as the tables show it
    url: str
    slug: str  # names its folder of server logs

    @property
    def system(self) -> str:
        return f"threadql {self.name}"


@dataclass(frozen=True)
class Setup:
    """What every pass shares."""

    workdir: Path
    generator: LoadGenerator
    secret: str
    seconds: float
    redis_url: str | None  # None: W6 is skipped
    delivery_runs: Sequence[Run]  # W5's and W6's


@dataclass(frozen=True)
class Reads:
    """Read workloads for a server of one configuration, their statements counted."""

    system: str
    settings: Mapping[str, str]  # beside the bench's own
    workloads: Sequence[Workload]
    counted: Sequence[inprocess.Counted]

    def counted_for(self, workload: Workload) -> inprocess.Counted:
        return self.counted[list(self.workloads).index(workload)]


@dataclass(frozen=True)
class Prepared:
    """A backend's database, ready: the reads with the server's defaults (the response
    cache on, where there is one), and those with the response cache off."""

    backend: Backend
    default: Reads
    uncached: Reads | None


@dataclass
class Results:
    backend: str
    reads: list[Row]
    writes: WriteResult
    writes_row: Row  # W4 in the main table
    local: list[DeliveryResult] = field(default_factory=list)  # W5
    cross: list[DeliveryResult] = field(default_factory=list)  # W6

    @property
    def rows(self) -> list[Row]:
        return [*self.reads, self.writes_row]


def prepare(
    backend: Backend, default: Sequence[Workload], uncached: Sequence[Workload] = ()
) -> Prepared:
    """A fresh database at `backend.url`, its statements counted and its page plans shown.

    `default` runs against a server with its default settings, `uncached` against one with
    the response cache off; on a server without that cache, `default` takes both.
    """
    if not has_response_cache():
        default, uncached = list(dict.fromkeys([*default, *uncached])), ()
    huge = W3 in (*default, *uncached)
    print(f"{backend.name}: preparing the dataset{' (W3 too)' * huge} …", flush=True)
    asyncio.run(dataset.prepare(backend.url, huge=huge))
    reads = _counted(backend, backend.system, {}, default)
    off = f"{backend.system}, {CACHE_OFF_LABEL}"
    cache_off = _counted(backend, off, CACHE_OFF, uncached) if uncached else None
    for big in (W2, W3) if huge else (W2,):
        explain = plans.page_plans(backend.url, big.thread_key, big.first, big.replies_first)
        print(asyncio.run(explain))
    return Prepared(backend, reads, cache_off)


def _counted(
    backend: Backend, system: str, settings: Mapping[str, str], workloads: Sequence[Workload]
) -> Reads:
    counted = asyncio.run(inprocess.count_statements(backend.url, workloads, settings))
    return Reads(system, settings, workloads, counted)


def measure(prepared: Prepared, setup: Setup, *, local_delivery: bool) -> Results:
    """Every workload against the prepared database."""
    backend = prepared.backend
    logs = setup.workdir / backend.slug
    logs.mkdir()
    env = {
        "THREADQL_JWT_SECRET": setup.secret,
        "THREADQL_SUBSCRIBER_QUEUE": str(delivery.SUBSCRIBER_QUEUE),
    }
    uncached_reads = []
    if prepared.uncached is not None:
        settings = {**env, **prepared.uncached.settings}
        with running_server(backend.url, logs / "uncached.log", settings) as server:
            uncached_reads = _load_all(prepared.uncached, setup, server)

    with running_server(backend.url, logs / "server.log", env) as server:
        graphql_url = f"{server.base_url}/graphql"
        reads = _load_all(prepared.default, setup, server)
        print(f"{backend.name} W4 addComment: {WRITERS} writers, {setup.seconds:g} s …", flush=True)
        memory = ServerMemory(server.pid)
        memory.reset()
        writes = asyncio.run(measure_writes(graphql_url, setup.secret, setup.seconds))
        writes_peak = memory.peak_mib()
        local = []
        if local_delivery:
            local = asyncio.run(
                delivery.measure_delivery(
                    graphql_url, setup.secret, runs=setup.delivery_runs, memories=[memory]
                )
            )
    statements = asyncio.run(inprocess.count_add_comment(backend.url, setup.secret, DEMO_THREAD))
    results = Results(
        backend.name,
        reads + uncached_reads,
        writes,
        _writes_row(backend, writes, statements, writes_peak),
        local,
    )
    if setup.redis_url is not None:
        print(f"{backend.name} W6: two processes, events through Redis …", flush=True)
        results.cross = measure_cross_process(
            backend.url, setup.redis_url, setup.secret, env, logs, setup.delivery_runs
        )
    return results


def _load_all(reads: Reads, setup: Setup, server: Running) -> list[Row]:
    url = f"{server.base_url}/graphql"
    memory = ServerMemory(server.pid)
    rows = []
    for workload, count in zip(reads.workloads, reads.counted, strict=True):
        body = json.dumps(workload.body).encode("utf-8")
        _check_over_http(url, body, count.comments)
        label = f"{reads.system} {workload.name}"
        print(f"{label}: {CLIENTS} clients, {setup.seconds:g} s …", flush=True)
        load, peak = measured(setup.generator, url, body, setup.seconds, memory)
        rows.append(
            Row(
                workload.name,
                reads.system,
                Kind.THREADQL,
                count.comments,
                count.statements,
                load,
                peak,
            )
        )
    return rows


def _writes_row(backend: Backend, writes: WriteResult, statements: int, peak: float) -> Row:
    load = LoadResult(
        requests=writes.comments,
        requests_per_second=writes.comments_per_second,
        median_ms=writes.median_ms,
        p99_ms=writes.p99_ms,
    )
    return Row(W4_LABEL, backend.system, Kind.THREADQL, None, statements, load, peak)


def _check_over_http(url: str, body: bytes, comments: int) -> None:
    """The load generators look at status codes only, so the answer itself is checked first."""
    response = httpx.post(
        url, content=body, headers={"content-type": "application/json"}, timeout=60
    )
    response.raise_for_status()
    returned = count_comments(checked_data(response.json()))
    if returned != comments:
        raise RuntimeError(f"the server returned {returned} comments, in-process {comments}")
