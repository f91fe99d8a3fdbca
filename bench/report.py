"""The results as Markdown tables, for the terminal and for bench/out/results.md."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

from websockets.version import version as websockets_version

from bench.delivery import CONNECT_CONCURRENCY, SUBSCRIBER_QUEUE
from bench.load import WARMUP_SECONDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.delivery import DeliveryResult
    from bench.load import LoadResult
    from bench.writes import WriteResult


@dataclass(frozen=True)
class Row:
    workload: str
    comments: int
    statements: int
    load: LoadResult


def markdown(rows: Sequence[Row], generator: str, seconds: float) -> str:
    lines = [
        "| workload | comments returned | SQL statements/request | median ms | p99 ms"
        " | requests/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.workload} | {r.comments} | {r.statements} | {r.load.median_ms:.2f}"
        f" | {r.load.p99_ms:.2f} | {r.load.requests_per_second:.1f} |"
        for r in rows
    ]
    # p99 of a few dozen requests is close to their maximum, so the counts are shown.
    measured = ", ".join(f"{r.load.requests} ({r.workload.split()[0]})" for r in rows)
    lines += [
        "",
        f"Load: {generator}, {seconds:g} s per workload against one uvicorn worker;"
        f" Python {platform.python_version()}; {os.cpu_count()} CPUs.",
        f"Requests measured: {measured}.",
    ]
    return "\n".join(lines) + "\n"


def writes_and_delivery(writes: WriteResult, deliveries: Sequence[DeliveryResult]) -> str:
    """W4 and W5: the second table."""
    w = writes
    lines = [
        "| workload | connections | comments timed | median ms | p99 ms"
        " | addComment median ms | comments/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| W4 addComment, comments and replies | {w.writers} writers | {w.comments}"
        f" | {w.median_ms:.2f} | {w.p99_ms:.2f} | {w.median_ms:.2f}"
        f" | {w.comments_per_second:.1f} |",
    ]
    lines += [
        f"| W5 commentAdded delivery | {d.subscribers:,} subscriber{'s' * (d.subscribers > 1)}"
        f" | {d.comments} | {d.median_ms:.2f} | {d.p99_ms:.2f} | {d.mutation_median_ms:.2f} | |"
        for d in deliveries
    ]
    biggest = max(deliveries, key=lambda d: d.subscribers)
    acked = w.count_after - w.count_before
    lines += [
        "",
        f"W4: median and p99 of the addComment round trip. {w.writers} writers, each signed in"
        " as its own user on its own keep-alive connection, posted for"
        f" {w.seconds:g} s after a {WARMUP_SECONDS:g} s warm-up: about a third top-level comments,"
        " the rest replies to the writer's own earlier comments. The demo thread's commentCount"
        f" rose from {w.count_before} to {w.count_after}, by the {acked} comments acknowledged"
        f" ({w.warmup_comments} in the warm-up); no response held an error.",
        "",
        "W5: median and p99 from sending addComment to a subscriber receiving the event, over"
        f" every subscriber and comment ({', '.join(f'{d.deliveries:,}' for d in deliveries)}"
        " deliveries). Anonymous commentAdded subscribers on the demo thread, connected"
        f" {CONNECT_CONCURRENCY} at a time ({biggest.subscribers:,} in"
        f" {biggest.connect_seconds:.1f} s); top-level comments posted one at a time, each once"
        " every subscriber had the one before; every subscriber received every comment exactly"
        f" once. THREADQL_SUBSCRIBER_QUEUE={SUBSCRIBER_QUEUE}. One Python process (asyncio,"
        f" websockets {websockets_version}) reads every socket, so its own reading time is in"
        " the figures.",
    ]
    return "\n".join(lines) + "\n"
