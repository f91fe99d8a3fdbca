"""Reads that arrive while one is in flight share the next one.

Each caller's read still starts after the caller asked, so it sees every write committed
before that: what makes a response-cache check correct holds, while eight concurrent checks
cost one round trip instead of eight.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

K = TypeVar("K")
V = TypeVar("V")


class SharedReads(Generic[K, V]):
    """`read(keys)` for the keys of every caller waiting, one read at a time."""

    def __init__(self, read: Callable[[list[K]], Awaitable[V]]) -> None:
        self._read = read
        self._waiting: list[tuple[set[K], asyncio.Future[V]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def __call__(self, keys: set[K]) -> V:
        """What the read that served `keys` returned: it may hold other callers' keys too."""
        waiter: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, waiter))
        if self._reader is None or self._reader.done():
            # In a context of its own: no caller's request owns the read.
            self._reader = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await waiter

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            keys = sorted(set().union(*(keys for keys, _ in batch)))  # type: ignore[type-var]
            try:
                value = await self._read(keys)
            except Exception as error:  # every caller of this read sees its failure
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_result(value)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for _, waiter in self._waiting:
            waiter.cancel()
        self._waiting = []
