"""Brokers on their own: the in-process one, and the Redis one that spans processes."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.broker import Event, EventKind, MemoryBroker, SubscriberTooSlow
from server.redis_broker import BrokerDisconnected, BrokerUnavailable, RedisBroker
from tests.services import REDIS, unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from server.broker import Broker

QUEUE = 4


class Overflow:
    """An `on_overflow` that counts its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def added(thread_id: int, comment_id: int, *ancestors: int) -> Event:
    return Event(EventKind.ADDED, thread_id, comment_id, ancestors)


async def next_event(events: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(events), 10)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait, within bounds, for what Redis does after a call has returned."""

    async with asyncio.timeout(10):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
def name() -> str:
    """This test's own key prefix and client name: tests never see each other's channels."""
    return f"threadql-test-{uuid4().hex}"


@pytest.fixture
def redis_server() -> str:
    """The test server's URL; a skip without it, or a failure in CI."""
    with SyncRedis.from_url(REDIS, socket_connect_timeout=5, socket_timeout=5) as client:
        try:
            client.ping()
        except (RedisError, OSError) as error:
            unavailable("Redis", error)
    return REDIS


@pytest.fixture
async def admin(redis_server: str) -> AsyncIterator[Redis]:
    """A connection of its own, to look at the server and to cut the broker's connection."""
    client = Redis.from_url(redis_server)
    yield client
    await client.aclose()


def redis_broker(name: str) -> RedisBroker:
    return RedisBroker(REDIS, queue_size=QUEUE, prefix=f"{name}:", client_name=name)


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest, name: str) -> AsyncIterator[Broker]:
    if request.param == "memory":
        yield MemoryBroker(QUEUE)
        return
    request.getfixturevalue("redis_server")
    started = redis_broker(name)
    await started.start()
    yield started
    await started.close()


async def server_channels(broker: Broker) -> list[str]:
    """The broker's channels with a subscriber on the Redis server."""
    if not isinstance(broker, RedisBroker):
        return []
    async with Redis.from_url(REDIS, decode_responses=True) as client:
        return sorted(str(c) for c in await client.pubsub_channels(f"{broker.prefix}*"))


async def nothing_left(broker: Broker) -> bool:
    if broker.subscriber_count() != 0:
        return False
    if isinstance(broker, RedisBroker) and broker.channels():
        return False
    return not await server_channels(broker)


async def test_an_event_reaches_every_subscriber_of_its_thread_and_no_other(
    broker: Broker,
) -> None:
    await broker.publish(added(9, 90))  # nobody listens: dropped, quietly
    async with (
        broker.subscribe(1, Overflow()) as first,
        broker.subscribe(1, Overflow()) as second,
        broker.subscribe(2, Overflow()) as other,
    ):
        assert broker.subscriber_count() == 3
        one, two, later = added(1, 10), added(2, 20), added(1, 11)
        for event in (one, two, later):
            await broker.publish(event)
        # Each sees its thread's events in order, with nothing of the other thread between.
        assert [await next_event(first), await next_event(first)] == [one, later]
        assert [await next_event(second), await next_event(second)] == [one, later]
        assert await next_event(other) == two
        last = added(2, 21)
        await broker.publish(last)
        assert await next_event(other) == last


async def test_kinds_and_ancestor_ids_arrive_as_published(broker: Broker) -> None:
    published = [
        Event(EventKind.ADDED, 3, 30),
        Event(EventKind.ADDED, 3, 31, (30,)),
        Event(EventKind.UPDATED, 3, 32, (30, 31)),
        # `shared` belongs to this process: never sent, whatever it holds.
        Event(EventKind.UPDATED, 3, 30, shared={"row": object()}),
    ]
    async with broker.subscribe(3, Overflow()) as events:
        for event in published:
            await broker.publish(event)
        received = [await next_event(events) for _ in published]
    assert received == published
    assert [e.kind for e in received] == [e.kind for e in published]
    assert [e.ancestor_ids for e in received] == [e.ancestor_ids for e in published]
    if isinstance(broker, RedisBroker):
        assert all(e.shared == {} for e in received)


async def test_a_subscriber_that_falls_behind_is_cut_off_and_another_gets_everything(
    broker: Broker,
) -> None:
    slow_overflow, fast_overflow = Overflow(), Overflow()
    async with (
        broker.subscribe(5, slow_overflow) as slow,
        broker.subscribe(5, fast_overflow) as fast,
    ):
        for n in range(QUEUE + 1):  # the slow one never reads: one more than it may hold
            event = added(5, n)
            await broker.publish(event)
            assert await next_event(fast) == event
        assert slow_overflow.count == 1
        with pytest.raises(SubscriberTooSlow):
            await next_event(slow)
        assert broker.subscriber_count() == 1
        after = added(5, 100)
        await broker.publish(after)
        assert await next_event(fast) == after
    assert (slow_overflow.count, fast_overflow.count) == (1, 0)
    await eventually(lambda: nothing_left(broker))


async def test_leaving_in_any_way_frees_everything(broker: Broker) -> None:
    async with broker.subscribe(1, Overflow()), broker.subscribe(1, Overflow()):
        async with broker.subscribe(2, Overflow()):
            assert broker.subscriber_count() == 3
            if isinstance(broker, RedisBroker):
                assert broker.channels() == {broker.channel(1), broker.channel(2)}
                assert await server_channels(broker) == [broker.channel(1), broker.channel(2)]
                async with Redis.from_url(REDIS, decode_responses=True) as client:
                    # One subscription per process, however many local subscribers.
                    assert await client.pubsub_numsub(broker.channel(1)) == [(broker.channel(1), 1)]
        with pytest.raises(LookupError):  # left by an error
            async with broker.subscribe(3, Overflow()):
                raise LookupError

        entered = asyncio.Event()

        async def read_forever() -> None:
            async with broker.subscribe(4, Overflow()) as events:
                entered.set()
                await anext(events)

        reader = asyncio.create_task(read_forever())
        await asyncio.wait_for(entered.wait(), 10)
        assert broker.subscriber_count() == 3
        reader.cancel()  # left by cancellation, while waiting for an event
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert broker.subscriber_count() == 2
    await eventually(lambda: nothing_left(broker))


async def test_two_hundred_subscriptions_come_and_go_and_leave_nothing(broker: Broker) -> None:
    baseline = len(asyncio.all_tasks())
    for n in range(200):
        async with broker.subscribe(n % 3, Overflow()):
            pass

    async def visit(n: int) -> None:
        async with broker.subscribe(n % 3, Overflow()):
            await asyncio.sleep(0)

    await asyncio.gather(*(visit(n) for n in range(200)))
    await eventually(lambda: nothing_left(broker))
    assert len(asyncio.all_tasks()) == baseline
    async with broker.subscribe(0, Overflow()) as events:  # and it still works
        event = added(0, 1)
        await broker.publish(event)
        assert await next_event(events) == event


# Redis only.


@pytest.mark.usefixtures("redis_server")
async def test_two_processes_deliver_to_each_other(name: str) -> None:
    async with AsyncExitStack() as stack:
        brokers = [redis_broker(name), redis_broker(name)]
        for each in brokers:
            await each.start()
            stack.push_async_callback(each.close)
        first, second = brokers
        async with (
            first.subscribe(1, Overflow()) as on_first,
            second.subscribe(1, Overflow()) as on_second,
        ):
            for publisher, comment_id in ((first, 10), (second, 11)):
                event = added(1, comment_id, 2, 1)
                await publisher.publish(event)
                assert await next_event(on_first) == event
                assert await next_event(on_second) == event


async def test_without_redis_publishing_only_warns_and_subscribing_fails_fast(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = RedisBroker("redis://127.0.0.1:1", prefix=f"{name}:", client_name=name)
    with caplog.at_level(logging.WARNING, logger="server.redis_broker"):
        await broker.start()
        try:
            assert not broker.connected
            await broker.publish(added(1, 10))
            with pytest.raises(BrokerUnavailable, match="reconnect shortly"):
                async with broker.subscribe(1, Overflow()):
                    pass
            assert broker.subscriber_count() == 0
        finally:
            await broker.close()
    assert "live update for thread 1 not published" in caplog.text


async def kill_pubsub_connection(admin: Redis, name: str) -> None:
    clients: list[dict[str, Any]] = await admin.client_list()
    (client,) = [c for c in clients if c["name"] == f"{name}-pubsub"]
    await admin.client_kill_filter(_id=client["id"])


async def test_a_dropped_connection_ends_subscriptions_and_the_broker_recovers(
    admin: Redis, name: str
) -> None:
    broker = redis_broker(name)
    await broker.start()
    try:
        first, second = Overflow(), Overflow()
        old = AsyncExitStack()
        waiting_on = await old.enter_async_context(broker.subscribe(1, first))
        other = await old.enter_async_context(broker.subscribe(2, second))
        waiting = asyncio.ensure_future(anext(waiting_on))

        await kill_pubsub_connection(admin, name)
        with pytest.raises(BrokerDisconnected):  # told even while waiting for an event
            await asyncio.wait_for(waiting, 10)
        with pytest.raises(BrokerDisconnected):
            await next_event(other)
        assert (first.count, second.count) == (1, 1)

        async def connected() -> bool:
            return broker.connected

        await eventually(connected)
        fresh = Overflow()
        async with broker.subscribe(1, fresh) as events:
            await old.aclose()  # leaving late must not take the fresh subscription's channel
            assert broker.channels() == {broker.channel(1)}
            event = added(1, 12, 11)
            await broker.publish(event)
            assert await next_event(events) == event
        assert fresh.count == 0
        await eventually(lambda: nothing_left(broker))
    finally:
        await broker.close()


async def test_closing_ends_subscriptions_and_leaves_no_task_or_connection(
    admin: Redis, name: str
) -> None:
    baseline = len(asyncio.all_tasks())
    broker = redis_broker(name)
    await broker.start()
    overflow = Overflow()
    async with broker.subscribe(1, overflow) as events:
        await broker.publish(added(1, 10))
        assert await next_event(events) == added(1, 10)
        await broker.close()
        assert overflow.count == 1
        with pytest.raises(BrokerDisconnected):
            await next_event(events)
    with pytest.raises(BrokerUnavailable):
        async with broker.subscribe(1, Overflow()):
            pass
    assert len(asyncio.all_tasks()) == baseline

    async def disconnected() -> bool:
        clients: list[dict[str, Any]] = await admin.client_list()
        return not [c for c in clients if c["name"].startswith(name)]

    await eventually(disconnected)
