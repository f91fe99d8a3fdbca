"""Live events: writes publish ids after they commit, subscribers of a thread receive them."""

from __future__ import annotations

import asyncio
import enum
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager


T = TypeVar("T")


class EventKind(enum.Enum):
    ADDED = "added"
    UPDATED = "updated"


@dataclass(frozen=True, slots=True)
class Event:
    """Ids only: subscribers read the committed row themselves, each as its own viewer.

    `shared` lets the subscribers of one process read the row once between them.
    """

    kind: EventKind
    thread_id: int
    comment_id: int
    ancestor_ids: tuple[int, ...] = ()
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class SubscriberTooSlow(Exception):
    """The subscriber fell further behind than its queue allows."""


class Broker(Protocol):
    async def publish(self, event: Event) -> None:
        """Deliver to the thread's subscribers; never waits for any of them."""
        ...

    def subscribe(
        self, thread_id: int, on_overflow: Callable[[], None]
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """The thread's events until the context exits; `on_overflow` runs if it falls behind."""
        ...

    async def turn(self) -> None:
        """Wait for a turn before work done once per subscriber: see `Turns`."""
        ...

    def subscriber_count(self) -> int: ...


class Turns:
    """At most `per_turn` callers go in each turn of the event loop; the others wait, in order.

    Each piece of work done once per subscriber takes a turn: starting an operation, running
    a selection for an event, handing a shared result to one member to send. One event for
    thousands of subscribers then takes many short turns rather than one long one, and the
    loop reads and answers the requests that arrive meanwhile between them.
    """

    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._gone = 0  # callers let through in this turn
        self._next_turn_due = False

    async def take(self) -> None:
        if self._waiting or self._gone >= self.per_turn:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            self._start_next_turn()
            await waiter  # a cancelled waiter is skipped: it took no one's place
            return
        self._gone += 1
        self._start_next_turn()

    def _start_next_turn(self) -> None:
        if not self._next_turn_due:
            self._next_turn_due = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """Let the next few go: they run in the loop's next turn, after the I/O it polls."""
        self._next_turn_due = False
        self._gone = 0
        while self._waiting and self._gone < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._gone += 1
        if self._gone:
            self._start_next_turn()


class _Mark(enum.Enum):
    OVERFLOWED = "overflowed"
    ENDED = "ended"


class BoundedQueue(Generic[T]):
    """One subscriber's bounded queue; overflowing it ends the subscription."""

    def __init__(self, size: int, on_overflow: Callable[[], None]) -> None:
        self._queue: asyncio.Queue[T | _Mark] = asyncio.Queue()
        self._size = size
        self._on_overflow = on_overflow

    def offer(self, item: T) -> bool:
        """Queue the item; False, dropping the backlog, when the subscriber fell too far behind."""
        if self._queue.qsize() < self._size:
            self._queue.put_nowait(item)
            return True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_Mark.OVERFLOWED)  # the reader stops here, if it ever reads again
        self._on_overflow()
        return False

    def end(self) -> None:
        """No more items: the reader stops once it has read those queued."""
        self._queue.put_nowait(_Mark.ENDED)

    async def items(self) -> AsyncIterator[T]:
        while True:
            item = await self._queue.get()
            if item is _Mark.ENDED:
                return
            if item is _Mark.OVERFLOWED:
                raise SubscriberTooSlow(f"more than {self._size} items behind")
            yield item


class MemoryBroker:
    """Fan-out within one process."""

    def __init__(self, queue_size: int = 100, deliveries_per_turn: int = 2) -> None:
        self.queue_size = queue_size
        self._subscribers: defaultdict[int, set[BoundedQueue[Event]]] = defaultdict(set)
        self._turns = Turns(deliveries_per_turn)

    async def publish(self, event: Event) -> None:
        for queue in list(self._subscribers.get(event.thread_id, ())):
            if not queue.offer(event):
                self._remove(event.thread_id, queue)

    @asynccontextmanager
    async def subscribe(
        self, thread_id: int, on_overflow: Callable[[], None]
    ) -> AsyncIterator[AsyncIterator[Event]]:
        queue = BoundedQueue[Event](self.queue_size, on_overflow)
        self._subscribers[thread_id].add(queue)
        try:
            yield queue.items()
        finally:
            self._remove(thread_id, queue)

    def _remove(self, thread_id: int, queue: BoundedQueue[Event]) -> None:
        subscribers = self._subscribers.get(thread_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[thread_id]

    async def turn(self) -> None:
        await self._turns.take()

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
