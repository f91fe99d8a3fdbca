"""Answers to anonymous queries, kept as encoded bytes while the threads they read are unchanged.

Every write to a thread moves `threads.version` in the write's own transaction. An entry
records the version of each thread its response read, each one read no later than the first
of that thread's rows (in the thread row itself, or by one read of versions just before its
comments). A hit reads the current versions in one statement and serves the bytes only if
none moved: a write acknowledged before the check is never missed. (A new name or avatar
shows in threads too: it moves the version of every thread its user wrote in.)

A response that read anything else (lists of threads, users, a thread that is not there) is
not kept, since no version covers it; one that read nothing stored (`viewer`, introspection)
is kept with no versions and served without a statement.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from graphql import GraphQLError, parse
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

if TYPE_CHECKING:
    from collections.abc import Sequence

    from db.rows import CommentRow, PageRequest, ThreadRow
    from db.storage import Storage

K = TypeVar("K")
V = TypeVar("V")

ENTRY_OVERHEAD = 256  # bytes an entry costs beside its body, roughly: key, versions, links
DOCUMENTS = 512  # documents whose operation type is remembered


class LRU(Generic[K, V]):
    """Least recently used out first, held within a number of entries and of bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep `value`, evicting the least recently used; one larger than the whole is not kept."""
        self.discard(key)
        if size > self.max_bytes:
            return
        self._items[key] = (value, size)
        self.bytes += size
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self.bytes -= evicted

    def discard(self, key: K, value: V | None = None) -> None:
        """Forget `key`; when `value` is given, only while it is still what `key` holds."""
        item = self._items.get(key)
        if item is not None and (value is None or item[0] is value):
            del self._items[key]
            self.bytes -= item[1]


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    versions: dict[int, int]  # thread id -> version, as the response read them
    tag: bytes  # of the request and the versions: ETags derive from it
    operation: str | None  # as the request that made it was logged and counted

    def etag(self, media: str) -> str:
        """Strong: the same bytes under the same content type."""
        return '"' + hashlib.blake2b(self.tag + media.encode(), digest_size=16).hexdigest() + '"'


def request_key(
    query: str, variables: dict[str, Any] | None, operation_name: str | None, base_url: str
) -> bytes:
    """What makes two anonymous requests the same: responses hold absolute URLs (avatars),
    so the server's own URL is part of it."""
    request = [query, variables, operation_name, base_url]
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).digest()


def matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` names `etag` (compared weakly, as RFC 9110 has it for this header)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


@lru_cache(maxsize=DOCUMENTS)
def is_query(document: str, operation_name: str | None) -> bool:
    """Only queries are kept; the document has run once already, so parsing it succeeds."""
    try:
        operation = get_operation_type(parse(document, no_location=True), operation_name)
    except (GraphQLError, RuntimeError):
        return False
    return operation is OperationType.QUERY


class ReadRecorder:
    """The storage as one anonymous request reads it, noting the version of each thread it
    reads no later than that thread's first rows.

    What it does not know passes through and makes the response uncacheable, so that a
    new kind of read is never cached unchecked.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.versions: dict[int, int] = {}
        self.cacheable = True

    @property
    def statements(self) -> int:
        return self._storage.statements

    @statements.setter
    def statements(self, value: int) -> None:
        self._storage.statements = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attribute = getattr(self._storage, name)
        if not callable(attribute):
            return attribute

        def unrecorded(*args: Any, **kwargs: Any) -> Any:
            self.cacheable = False
            return attribute(*args, **kwargs)

        return unrecorded

    async def threads_by_ids(self, ids: Sequence[int]) -> list[ThreadRow | None]:
        return self._threads(await self._storage.threads_by_ids(ids))

    async def threads_by_keys(self, keys: Sequence[str]) -> list[ThreadRow | None]:
        return self._threads(await self._storage.threads_by_keys(keys))

    async def comments_by_ids(self, keys: Sequence[tuple[int, int]]) -> list[CommentRow | None]:
        await self._versions_before({thread_id for thread_id, _ in keys})
        return await self._storage.comments_by_ids(keys)

    async def comment_pages(self, requests: Sequence[PageRequest]) -> list[list[CommentRow]]:
        await self._versions_before({request.thread_id for request in requests})
        return await self._storage.comment_pages(requests)

    def _threads(self, rows: list[ThreadRow | None]) -> list[ThreadRow | None]:
        for row in rows:
            if row is None:
                self.cacheable = False  # it may be created: no version says so
            else:
                self._saw(row.id, row.version)
        return rows

    async def _versions_before(self, thread_ids: set[int]) -> None:
        """Versions of threads whose rows come next and whose version is not known yet."""
        unseen = sorted(thread_ids - self.versions.keys())
        if not unseen or not self.cacheable:
            return
        found = await self._storage.thread_versions(unseen)
        for thread_id in unseen:
            if thread_id in found:
                self._saw(thread_id, found[thread_id])
            else:
                self.cacheable = False

    def _saw(self, thread_id: int, version: int) -> None:
        if self.versions.setdefault(thread_id, version) != version:
            self.cacheable = False  # written to while this response was read


class ResponseCache:
    def __init__(self, storage: Storage, max_entries: int, max_bytes: int) -> None:
        self.storage = storage
        self.entries: LRU[bytes, Entry] = LRU(max_entries, max_bytes)
        self.hits = 0  # answers served from an entry

    async def lookup(self, key: bytes) -> Entry | None:
        """The entry, if every thread it read is still at the version it read: one statement,
        none for a response that read no thread."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.versions and await self.storage.thread_versions(list(entry.versions)) != (
            entry.versions
        ):
            self.entries.discard(key, entry)
            return None
        self.hits += 1
        return entry

    def store(
        self, key: bytes, body: bytes, versions: dict[int, int], operation: str | None
    ) -> Entry:
        tag = hashlib.sha256(key + orjson.dumps(sorted(versions.items()))).digest()
        entry = Entry(body, dict(versions), tag, operation)
        self.entries.put(key, entry, len(body) + ENTRY_OVERHEAD + 16 * len(versions))
        return entry
