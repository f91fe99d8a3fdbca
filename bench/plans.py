"""`EXPLAIN QUERY PLAN` for the page statements that the storage itself builds.

The SQL is captured from `comment_pages` rather than written out again here, so the plans
shown are those of the statements the server runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from db.rows import CommentOrder, PageRequest
from db.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


class RecordingStorage(SQLiteStorage):
    """Keeps every read statement with its parameters."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.recorded: list[tuple[str, Sequence[Any]]] = []

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.recorded.append((sql, params))
        return await super()._read(sql, params)


async def page_plans(path: Path, thread_key: str, first: int, replies_first: int) -> str:
    """Plans of a thread's top-level page and of one window statement over its replies."""
    storage = RecordingStorage(path)
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
            lines += [f"-- {title}", sql, *(f"   {step}" for step in plan), ""]
        return "\n".join(lines)
    finally:
        await storage.close()
