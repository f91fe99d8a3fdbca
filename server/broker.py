"""Live events: writes publish ids after they commit, subscribers of a thread receive them."""

from __future__ import annotations

import asyncio
import enum
from collections import defaultdict
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

    def subscriber_count(self) -> int: ...


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

    def __init__(self, queue_size: int = 100) -> None:
        self.queue_size = queue_size
        self._subscribers: defaultdict[int, set[BoundedQueue[Event]]] = defaultdict(set)

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

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
