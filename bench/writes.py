"""W4: concurrent writers posting comments and replies to the demo thread, closed loop."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from bench.load import WARMUP_SECONDS
from bench.posting import Poster, comment_body

WRITERS = 16
TOP_LEVEL_SHARE = 1 / 3  # the rest are replies to the writer's own earlier comments
MAX_POSTS_PER_WRITER = 1_000_000  # a bound beside the deadline; never reached in practice


class CountMismatch(RuntimeError):
    """The thread's commentCount does not match the comments the server acknowledged."""


@dataclass(frozen=True)
class WriteResult:
    writers: int
    seconds: float
    comments: int  # acknowledged while measuring
    comments_per_second: float
    median_ms: float
    p99_ms: float
    warmup_comments: int
    count_before: int
    count_after: int


@dataclass
class Writer:
    number: int
    poster: Poster
    thread_id: str
    rng: random.Random
    comment_ids: list[str] = field(default_factory=list)

    async def post_next(self) -> float:
        """One comment or reply; the seconds its mutation took."""
        reply = self.comment_ids and self.rng.random() >= TOP_LEVEL_SHARE
        parent = self.rng.choice(self.comment_ids) if reply else None
        body = comment_body(self.number, len(self.comment_ids) + 1)
        posted = await self.poster.add(body, thread_id=self.thread_id, parent_id=parent)
        self.comment_ids.append(posted.comment_id)
        return posted.round_trip


async def measure_writes(graphql_url: str, secret: str, seconds: float) -> WriteResult:
    """Warm up, measure for `seconds`, then check the thread's count against what was acked."""
    async with AsyncExitStack() as stack:
        posters = [
            await stack.enter_async_context(
                Poster(graphql_url, secret, f"bench-writer-{n}", f"Bench Writer {n}")
            )
            for n in range(WRITERS)
        ]
        before = await posters[0].thread()
        writers = [Writer(n, p, before.id, random.Random(n)) for n, p in enumerate(posters)]
        warmup, _ = await _drive(writers, WARMUP_SECONDS)
        latencies, elapsed = await _drive(writers, seconds)
        after = await posters[0].thread()

    acked = [i for writer in writers for i in writer.comment_ids]
    if len(set(acked)) != len(acked):
        raise CountMismatch(f"{len(acked) - len(set(acked))} comment ids were returned twice")
    if after.comment_count - before.comment_count != len(acked):
        raise CountMismatch(
            f"commentCount went from {before.comment_count} to {after.comment_count},"
            f" but {len(acked)} comments were acknowledged"
        )
    return WriteResult(
        writers=WRITERS,
        seconds=seconds,
        comments=len(latencies),
        comments_per_second=len(latencies) / elapsed,
        median_ms=statistics.median(latencies) * 1000,
        p99_ms=statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000,
        warmup_comments=len(warmup),
        count_before=before.comment_count,
        count_after=after.comment_count,
    )


async def _drive(writers: list[Writer], seconds: float) -> tuple[list[float], float]:
    """Every writer posts until the deadline; the latencies and the seconds it all took."""
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def write(writer: Writer) -> None:
        for _ in range(MAX_POSTS_PER_WRITER):
            if time.perf_counter() >= deadline:
                return
            latencies.append(await writer.post_next())

    async with asyncio.TaskGroup() as group:
        for writer in writers:
            group.create_task(write(writer))
    elapsed = time.perf_counter() - start
    if len(latencies) < 2:
        raise RuntimeError(f"only {len(latencies)} comments were posted in {seconds} s")
    return latencies, elapsed
