"""A fresh database holding the demo thread, a generated 10,000-comment thread and, when
asked, a 100,000-comment thread of the same shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from db import open_storage
from db.demo import load_demo
from db.postgres import PostgresStorage
from db.synthetic import generate_thread, tree_size

if TYPE_CHECKING:
    from pathlib import Path

    from db.storage import Storage

BIG_THREAD = "bench-10k"
# Most readers answer the article, a few answer each other: 625 top-level comments, each
# with 3 replies, 2 under each of those and 1 under each of them, 10,000 comments in all.
BIG_TOP_LEVEL = 625
BIG_FANOUT = (3, 2, 1)
# W3: the same shape with ten times the top-level comments, 100,000 comments in all.
HUGE_THREAD = "bench-100k"
HUGE_TOP_LEVEL = 10 * BIG_TOP_LEVEL


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


async def prepare(url: str, *, huge: bool) -> None:
    """Migrate, load the threads, and on PostgreSQL gather the planner's statistics, as
    autovacuum would soon after such a load, so that every request sees the same plans.

    Each generated thread is written by one bulk insert.
    """
    storage = open_storage(url)
    await storage.open()
    try:
        await storage.migrate()
        if not await load_demo(storage):
            raise RuntimeError("the database already holds threads; the bench needs a fresh one")
        await _generate(storage, BIG_THREAD, BIG_TOP_LEVEL)
        if huge:
            await _generate(storage, HUGE_THREAD, HUGE_TOP_LEVEL)
        if isinstance(storage, PostgresStorage):
            async with storage.pool.acquire() as conn:
                await conn.execute("ANALYZE")
    finally:
        await storage.close()


async def _generate(storage: Storage, key: str, top_level: int) -> None:
    thread = await generate_thread(storage, key, top_level, BIG_FANOUT)
    expected = tree_size(top_level, BIG_FANOUT)
    if thread.comment_count != expected:
        raise RuntimeError(f"{key} has {thread.comment_count} comments, not {expected}")
