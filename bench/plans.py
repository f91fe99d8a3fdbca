"""The planner's view of the page statements that the storage itself builds.

The SQL is captured from `comment_pages` rather than written out again here, so the plans
shown are those of the statements the server runs: `EXPLAIN QUERY PLAN` on SQLite,
`EXPLAIN` on PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from db import open_storage
from db.postgres import PostgresStorage
from db.rows import CommentOrder, PageRequest
from db.sql import SQLStorage
from db.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from collections.abc import Sequence


class _Recording(SQLStorage):
    """Keeps every read statement with its parameters; mixed in before a concrete backend,
    whose `_read` follows this one in the method resolution order."""

    recorded: list[tuple[str, Sequence[Any]]]

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.recorded.append((sql, params))
        return await super()._read(sql, params)  # type: ignore[safe-super]


class RecordingSQLite(_Recording, SQLiteStorage):
    pass


class RecordingPostgres(_Recording, PostgresStorage):
    pass


def recording_storage(url: str) -> RecordingSQLite | RecordingPostgres:
    """The backend that `open_storage` picks for `url`, recording its reads."""
    storage = open_storage(url)
    recording: RecordingSQLite | RecordingPostgres
    if isinstance(storage, SQLiteStorage):
        recording = RecordingSQLite(storage.path)
    elif isinstance(storage, PostgresStorage):
        recording = RecordingPostgres(storage.dsn)
    else:
        raise TypeError(f"no recording variant of {type(storage).__name__}")
    recording.recorded = []
    return recording


async def page_plans(url: str, thread_key: str, first: int, replies_first: int) -> str:
    """Plans of a thread's top-level page and of one window statement over its replies."""
    storage = recording_storage(url)
    await storage.open()
    try:
        thread = (await storage.threads_by_keys([thread_key]))[0]
        if thread is None:
            raise RuntimeError(f"no thread {thread_key!r} to explain")
        top = PageRequest(thread.id, None, CommentOrder.OLDEST, None, first + 1)
        storage.recorded.clear()
        (page,) = await storage.comment_pages([top])
        single = storage.recorded[-1]
        replies = [
            PageRequest(thread.id, c.id, CommentOrder.OLDEST, None, replies_first + 1)
            for c in page[:first]
        ]
        await storage.comment_pages(replies)
        window = storage.recorded[-1]
        sections = [
            (f"top-level page, one parent ({thread_key!r}, first {first})", single),
            (f"replies of {len(replies)} parents in one window statement", window),
        ]
        lines = []
        for title, (sql, params) in sections:
            plan = await storage.explain(sql, params)
            lines += [f"-- {storage.dialect}: {title}", sql, *(f"   {step}" for step in plan), ""]
        return "\n".join(lines)
    finally:
        await storage.close()
