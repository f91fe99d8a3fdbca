"""W5 and W6: how long a new comment takes to reach 1, 100 and 1,000 WebSocket subscribers.

Comments are posted one at a time, the next once every subscriber has the last, so each
figure is the fan-out of one event rather than a backlog. Every subscriber must receive
every comment exactly once. W5 subscribes on the server it posts to; W6 on another process.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

from bench.posting import Poster, comment_body
from tests.live import GraphQLWebSocket

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.memory import ServerMemory
    from bench.posting import Posted


class Run(NamedTuple):
    subscribers: int
    comments: int  # to time with that many
    budget: float  # seconds that posting them may take at most; fewer are timed if it runs out


RUNS = (Run(1, 200, 5.0), Run(100, 100, 15.0), Run(1_000, 30, 30.0))  # 50 s in all
QUICK_RUNS = (Run(1, 50, 2.0), Run(100, 20, 4.0))
CONNECT_CONCURRENCY = 50
# The server's default, set so that the shell cannot change it: posting one comment at a
# time, no subscriber falls more than a few events behind.
SUBSCRIBER_QUEUE = 100
CONNECT_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 10.0
SYNC_ROUNDS, SYNC_WAIT = 10, 5.0
MAX_EVENTS = 10_000  # per subscriber, a bound beside the run's own
OPEN_FILES_WANTED = 4096
POSTER = 10_000  # the writer number in the bodies of these comments

SUBSCRIPTION = """subscription Added($thread: ID!) {
  commentAdded(threadId: $thread) {
    id depth bodyHtml createdAt replyCount author { id name avatarUrl }
  }
}"""


class DeliveryFailed(RuntimeError):
    """A subscriber missed a comment, got one twice, or lost its connection."""


@dataclass(frozen=True)
class DeliveryResult:
    subscribers: int
    comments: int
    median_ms: float
    p99_ms: float
    mutation_median_ms: float
    connect_seconds: float
    peak_mib: tuple[float, ...]  # of each server process watched

    @property
    def deliveries(self) -> int:
        return self.subscribers * self.comments


def raise_open_file_limit(wanted: int = OPEN_FILES_WANTED) -> int:
    """Raise this process's soft limit towards the hard one; child processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    needed = max(run.subscribers for run in RUNS) + 100
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise RuntimeError(f"delivery needs {needed} open files per process; the limit is {soft}")
    return soft


class Countdown:
    """Fires once `target` parties have checked in."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self._done = asyncio.Event()

    def check_in(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self._done.set()

    async def wait(self, seconds: float) -> bool:
        """Whether it fired within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self._done.wait()
        except TimeoutError:
            return False
        return True


@dataclass
class Subscriber:
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # comment id: receive times

    def record(self, comment_id: str, tally: defaultdict[str, Countdown]) -> None:
        times = self.arrivals.setdefault(comment_id, [])
        times.append(time.perf_counter())
        if len(times) == 1:
            tally[comment_id].check_in()


async def measure_delivery(
    graphql_url: str,
    secret: str,
    *,
    subscribe_url: str | None = None,
    label: str = "W5",
    runs: Sequence[Run] = RUNS,
    memories: Sequence[ServerMemory] = (),
) -> list[DeliveryResult]:
    """Post to `graphql_url`; subscribe there too, or at `subscribe_url` (another process).

    The peak memory of the servers in `memories` is taken over each run.
    """
    ws_url = (subscribe_url or graphql_url).replace("http://", "ws://", 1)
    async with Poster(graphql_url, secret, "bench-poster", "Bench Poster") as poster:
        thread_id = (await poster.thread()).id
        results = []
        for run in runs:
            print(
                f"{label}: {run.subscribers} subscribers, up to {run.comments} comments …",
                flush=True,
            )
            for memory in memories:
                memory.reset()
            result = await _run(ws_url, poster, thread_id, *run)
            peaks = tuple(memory.peak_mib() for memory in memories)
            results.append(replace(result, peak_mib=peaks))
        return results


async def _run(
    ws_url: str, poster: Poster, thread_id: str, count: int, comments: int, budget: float
) -> DeliveryResult:
    subscribers = [Subscriber() for _ in range(count)]
    tally: defaultdict[str, Countdown] = defaultdict(lambda: Countdown(count))
    connected = Countdown(count)
    handshakes = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def listen(subscriber: Subscriber) -> None:
        async with AsyncExitStack() as stack:
            async with handshakes:
                # No client pings: the server's keep-alive pings are enough.
                ws = await stack.enter_async_context(
                    GraphQLWebSocket.connect(
                        ws_url, open_timeout=30.0, close_timeout=2.0, ping_interval=None
                    )
                )
                operation = await ws.subscribe(SUBSCRIPTION, {"thread": thread_id})
            connected.check_in()
            for _ in range(MAX_EVENTS):
                data = await ws.next_data(operation)
                subscriber.record(data["commentAdded"]["id"], tally)

    start = time.perf_counter()
    listeners = [asyncio.create_task(listen(s)) for s in subscribers]
    try:
        await _connect(connected, listeners)
        connect_seconds = time.perf_counter() - start
        # The clients' connections are this process's bulk: kept out of its full collections,
        # which would otherwise pause every client's reading and be timed as delivery.
        gc.collect()
        gc.freeze()
        synced = await _synchronise(poster, thread_id, tally, listeners)
        posted = []
        budget_end = time.perf_counter() + budget
        for number in range(comments):
            if time.perf_counter() >= budget_end:
                break
            posted.append(await _deliver(poster, thread_id, number, tally, listeners))
        end = await _deliver(poster, thread_id, comments, tally, listeners)
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        gc.unfreeze()

    _check_exactly_once(subscribers, [p.comment_id for p in posted] + [end.comment_id], synced)
    if len(posted) < 2:
        raise DeliveryFailed(f"only {len(posted)} comments were posted in {budget:g} s")
    latencies = [s.arrivals[p.comment_id][0] - p.sent_at for p in posted for s in subscribers]
    return DeliveryResult(
        subscribers=count,
        comments=len(posted),
        median_ms=statistics.median(latencies) * 1000,
        p99_ms=statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000,
        mutation_median_ms=statistics.median(p.round_trip for p in posted) * 1000,
        connect_seconds=connect_seconds,
        peak_mib=(),
    )


async def _connect(connected: Countdown, listeners: Sequence[asyncio.Task[None]]) -> None:
    deadline = time.perf_counter() + CONNECT_TIMEOUT
    while not await connected.wait(0.1):
        if any(task.done() for task in listeners) or time.perf_counter() >= deadline:
            raise DeliveryFailed(
                f"{connected.count} of {connected.target} subscribers connected"
            ) from _failure(listeners)


async def _synchronise(
    poster: Poster,
    thread_id: str,
    tally: defaultdict[str, Countdown],
    listeners: Sequence[asyncio.Task[None]],
) -> set[str]:
    """Post until one comment reaches everyone: then every subscription is registered.

    A connected client cannot tell when the server has registered its subscription.
    """
    synced: set[str] = set()
    for round_ in range(SYNC_ROUNDS):
        posted = await poster.add(f"Are you there? ({round_ + 1})", thread_id=thread_id)
        synced.add(posted.comment_id)
        if await tally[posted.comment_id].wait(SYNC_WAIT):
            return synced
    raise DeliveryFailed(
        f"after {SYNC_ROUNDS} comments, {tally[posted.comment_id].count} subscribers had the last"
    ) from _failure(listeners)


async def _deliver(
    poster: Poster,
    thread_id: str,
    number: int,
    tally: defaultdict[str, Countdown],
    listeners: Sequence[asyncio.Task[None]],
) -> Posted:
    posted = await poster.add(comment_body(POSTER, number), thread_id=thread_id)
    if not await tally[posted.comment_id].wait(DELIVERY_TIMEOUT):
        raise DeliveryFailed(
            f"{tally[posted.comment_id].count} of {len(listeners)} subscribers received"
            f" comment {number} within {DELIVERY_TIMEOUT:g} s"
        ) from _failure(listeners)
    return posted


def _failure(listeners: Sequence[asyncio.Task[None]]) -> BaseException | None:
    for task in listeners:
        if task.done() and not task.cancelled() and task.exception() is not None:
            return task.exception()
    return None


def _check_exactly_once(
    subscribers: Sequence[Subscriber], expected: Sequence[str], synced: set[str]
) -> None:
    missing = duplicated = unexpected = 0
    for subscriber in subscribers:
        missing += sum(1 for i in expected if i not in subscriber.arrivals)
        duplicated += sum(len(times) - 1 for times in subscriber.arrivals.values())
        unexpected += len(subscriber.arrivals.keys() - set(expected) - synced)
    if missing or duplicated or unexpected:
        raise DeliveryFailed(
            f"{len(subscribers)} subscribers, {len(expected)} comments each: {missing} missed,"
            f" {duplicated} received more than once, {unexpected} not posted by the bench"
        )
