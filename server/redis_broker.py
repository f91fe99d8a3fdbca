"""Live events across processes: each thread's events travel over a Redis channel of its own.

Every process keeps one pub/sub connection, subscribed to the channels of the threads its
own clients follow, and hands what arrives to a `MemoryBroker` for the local fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from server.broker import Event, EventKind, MemoryBroker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from redis.asyncio.connection import AbstractConnection

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.1  # seconds before reconnecting; doubled after each failed attempt
MAX_BACKOFF = 5.0
TIMEOUT = 5.0  # seconds to connect, or for Redis to answer a PUBLISH
UNAVAILABLE = "live updates are unavailable: reconnect shortly"


class BrokerUnavailable(Exception):
    """Redis cannot be reached now; the broker keeps trying."""


class BrokerDisconnected(BrokerUnavailable):
    """The connection to Redis dropped during the subscription: events may have been missed."""


@dataclass(frozen=True, slots=True)
class _Gap(Event):
    """Queued where the connection dropped: the subscriber's events end there."""


class _Subscriber:
    """Told at most once that its subscription ended, whether it fell behind or Redis left."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        self._on_overflow = on_overflow
        self._ended = False

    def end(self) -> None:
        """Never raises: a failing callback must not take the listener down with it."""
        if not self._ended:
            self._ended = True
            try:
                self._on_overflow()
            except Exception:
                log.exception("live updates: a subscriber's on_overflow failed")


class _Events:
    """A local subscriber's events, up to a gap."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> Event:
        event = await anext(self._events)
        if isinstance(event, _Gap):
            raise BrokerDisconnected("the connection to Redis dropped: reconnect and reload")
        return event


class _Session:
    """One pub/sub connection, its channels, and its commands awaiting confirmation.

    A single writer sends the commands, so Redis confirms them in the order they were sent.
    """

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.channels: dict[str, asyncio.Future[bool]] = {}  # each one's SUBSCRIBE
        self._outbox: asyncio.Queue[tuple[tuple[str, ...], asyncio.Future[bool] | None]] = (
            asyncio.Queue()
        )
        self._sent: deque[asyncio.Future[bool]] = deque()

    def command(self, name: str, channel: str) -> asyncio.Future[bool]:
        """True once Redis confirms it; False if the connection is lost first."""
        confirmed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait(((name, channel), confirmed))
        return confirmed

    def ping(self) -> None:
        self._outbox.put_nowait((("PING",), None))

    async def write(self) -> None:
        """Send queued commands; a subscriber cancelled mid-write cannot break the connection."""
        while True:
            args, confirmed = await self._outbox.get()
            if confirmed is not None:
                self._sent.append(confirmed)
            await self.connection.send_command(*args)

    def confirm(self) -> None:
        if self._sent:
            _settle(self._sent.popleft(), confirmed=True)

    def abandon(self) -> None:
        """The connection is gone: nothing still pending will be confirmed."""
        pending: list[asyncio.Future[bool]] = [*self._sent, *self.channels.values()]
        while not self._outbox.empty():
            _, confirmed = self._outbox.get_nowait()
            if confirmed is not None:
                pending.append(confirmed)
        for confirmed in pending:
            _settle(confirmed, confirmed=False)


def _settle(future: asyncio.Future[bool], *, confirmed: bool) -> None:
    if not future.done():
        future.set_result(confirmed)


def _encode(event: Event) -> bytes:
    """Ids only; `shared` is a memo of this process and stays here."""
    return orjson.dumps(
        {
            "kind": event.kind.value,
            "thread_id": event.thread_id,
            "comment_id": event.comment_id,
            "ancestor_ids": event.ancestor_ids,
        }
    )


def _decode(data: bytes | str) -> Event:
    fields = orjson.loads(data)
    return Event(
        EventKind(fields["kind"]),
        int(fields["thread_id"]),
        int(fields["comment_id"]),
        tuple(int(i) for i in fields["ancestor_ids"]),
    )


async def _stop(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel and await, retrieving any error so none is reported as never retrieved."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()


class RedisBroker:
    """Fan-out across processes through Redis pub/sub, and within this one by a MemoryBroker.

    `start()` begins listening, `close()` stops. While Redis is away, publishing logs and
    drops the event (the write itself stands), subscribing raises `BrokerUnavailable`, and
    the subscriptions that were open are ended through their `on_overflow`.
    """

    def __init__(
        self,
        url: str,
        queue_size: int = 100,
        prefix: str = "threadql:",
        *,
        client_name: str = "threadql",
        ping_interval: float = 30.0,
        deliveries_per_turn: int = 2,
    ) -> None:
        self.prefix = prefix
        self.queue_size = queue_size
        self._ping_interval = ping_interval
        self._local = MemoryBroker(queue_size, deliveries_per_turn)
        self._subscribers: dict[int, set[_Subscriber]] = {}
        # One quick retry: a pooled connection may be stale after Redis restarted.
        self._publisher = Redis.from_url(
            url,
            client_name=client_name,
            retry=Retry(NoBackoff(), 1),
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
        # No retries: reconnecting is the listener's own, so that no drop goes unnoticed.
        # No socket timeout: redis-py would write through asyncio.wait_for, which on Python
        # 3.11 can swallow a cancellation; `_connect` bounds the handshake, PING the rest.
        self._listener_pool = ConnectionPool.from_url(
            url,
            client_name=f"{client_name}-pubsub",
            protocol=2,  # messages as plain replies (push_request covers a URL asking RESP3)
            socket_timeout=None,
            socket_connect_timeout=TIMEOUT,
        )
        self._session: _Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()

    def channel(self, thread_id: int) -> str:
        return f"{self.prefix}thread:{thread_id}"

    async def start(self) -> None:
        """Listen; return once the first attempt to connect succeeded or failed.

        An unreachable Redis does not hold up the caller: the listener keeps trying.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-broker-listener")
        await self._attempted.wait()

    async def close(self) -> None:
        """Stop listening, end the open subscriptions, close both connections."""
        task, self._task = self._task, None
        if task is not None:
            await _stop([task])
        self._attempted.clear()
        await self._publisher.aclose()

    @property
    def connected(self) -> bool:
        return self._session is not None

    def channels(self) -> frozenset[str]:
        """The channels this process is subscribed to, or subscribing to."""
        return frozenset(self._session.channels) if self._session is not None else frozenset()

    def subscriber_count(self) -> int:
        return self._local.subscriber_count()

    async def turn(self) -> None:
        await self._local.turn()

    async def publish(self, event: Event) -> None:
        """Called after the commit: a Redis outage costs the live update, never the write."""
        try:
            await self._publisher.publish(self.channel(event.thread_id), _encode(event))
        except (RedisError, OSError) as error:
            log.warning("live update for thread %s not published: %s", event.thread_id, error)

    @asynccontextmanager
    async def subscribe(
        self, thread_id: int, on_overflow: Callable[[], None]
    ) -> AsyncIterator[AsyncIterator[Event]]:
        subscriber = _Subscriber(on_overflow)
        async with self._local.subscribe(thread_id, subscriber.end) as events:
            self._subscribers.setdefault(thread_id, set()).add(subscriber)
            try:
                await self._follow(thread_id)
                yield _Events(events)
            finally:
                self._leave(thread_id, subscriber)

    async def _follow(self, thread_id: int) -> None:
        """Subscribe to the thread's channel unless already subscribed; return once confirmed,
        so that an event published from here on reaches this subscriber."""
        session = self._session
        if session is None:
            raise BrokerUnavailable(UNAVAILABLE)
        channel = self.channel(thread_id)
        confirmed = session.channels.get(channel)
        if confirmed is None:
            confirmed = session.channels[channel] = session.command("SUBSCRIBE", channel)
        if not await asyncio.shield(confirmed):
            raise BrokerUnavailable(UNAVAILABLE)

    def _leave(self, thread_id: int, subscriber: _Subscriber) -> None:
        """Unsubscribe when the thread's last subscriber leaves; synchronous, so that a
        cancelled subscriber still leaves completely."""
        subscribers = self._subscribers.get(thread_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if subscribers:
                return
            del self._subscribers[thread_id]
        session = self._session
        channel = self.channel(thread_id)
        if session is not None and session.channels.pop(channel, None) is not None:
            session.command("UNSUBSCRIBE", channel)

    async def _run(self) -> None:
        """Connect and serve until the connection drops, forever, backing off while Redis
        stays away."""
        delay = MIN_BACKOFF
        while True:
            try:
                connection = await self._connect()
            except Exception as error:  # whatever the cause, the remedy is to try again
                log.warning("live updates: Redis unreachable (%s); retrying in %.1fs", error, delay)
                self._attempted.set()
            else:
                delay = MIN_BACKOFF
                await self._serve(connection)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _connect(self) -> AbstractConnection:
        connection: AbstractConnection = self._listener_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(TIMEOUT):
                await connection.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect()
            raise
        return connection

    async def _serve(self, connection: AbstractConnection) -> None:
        """Read and write until either fails; then end every subscription that was open,
        since its client may have missed events."""
        session = self._session = _Session(connection)
        self._attempted.set()
        tasks = [asyncio.create_task(session.write()), asyncio.create_task(self._read(session))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            error = next(iter(done)).exception()
            log.warning("live updates: lost the connection to Redis (%s); reconnecting", error)
        finally:
            self._session = None
            session.abandon()
            await _stop(tasks)
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect()
            await self._end_subscriptions()

    async def _read(self, session: _Session) -> None:
        """Deliver messages and note confirmations; ping a quiet connection, drop a mute one."""
        pinged = False
        while True:
            reply = await session.connection.read_response(
                timeout=self._ping_interval, push_request=True
            )
            if reply is None:
                if pinged:
                    raise RedisConnectionError("no answer to PING")
                session.ping()
                pinged = True
                continue
            pinged = False
            if isinstance(reply, list) and reply:
                await self._receive(session, reply)

    async def _receive(self, session: _Session, reply: list[bytes | str | int]) -> None:
        kind = reply[0]
        if kind in (b"subscribe", b"unsubscribe", "subscribe", "unsubscribe"):
            session.confirm()
        elif kind in (b"message", "message") and isinstance(data := reply[2], bytes | str):
            try:
                event = _decode(data)
            except (ValueError, KeyError, TypeError) as error:
                channel = reply[1]
                log.warning("live updates: ignored a malformed message on %r: %s", channel, error)
                return
            await self._local.publish(event)

    async def _end_subscriptions(self) -> None:
        """Each open subscription may have missed events: end it, so that its client reloads."""
        for thread_id, subscribers in list(self._subscribers.items()):
            for subscriber in list(subscribers):
                subscriber.end()
            await self._local.publish(_Gap(EventKind.UPDATED, thread_id, 0))
