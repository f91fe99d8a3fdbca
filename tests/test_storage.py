"""SQLite storage: migrations, connection settings, and counts kept by writes."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

import asyncpg
import pytest

from db import migrations, open_storage
from db.postgres import VERSIONS_CONNECTION, PostgresStorage
from db.rows import Actor, ThreadRef
from db.sql import SQLStorage, request_statements
from db.sqlite import SQLiteStorage
from db.storage import NotFound
from tests.conftest import new_comment, postgres_schema

if TYPE_CHECKING:
    import aiosqlite

    from db.storage import Storage


async def test_migrations_apply_once_and_are_recorded(database_url: str) -> None:
    storage = open_storage(database_url)
    assert isinstance(storage, SQLStorage)
    await storage.open()
    try:
        names = [m.name for m in migrations.load(storage.dialect)]
        assert names == [
            "0001_initial.sql",
            "0002_imports_and_authors.sql",
            "0003_comments_without_paths.sql",
            "0004_user_origin.sql",
        ]
        assert await storage.pending_migrations() == names
        assert await storage.migrate() == names
        assert await storage.migrate() == []
        assert await storage.pending_migrations() == []
    finally:
        await storage.close()


async def test_imported_users_move_out_of_the_tokens_reach(database_url: str) -> None:
    """Imports once named their users `import:<format>:<id>` among the tokens' subs: the
    migration gives them their own origin, keeping their ids and what names them."""
    storage = open_storage(database_url)
    assert isinstance(storage, SQLStorage)
    await storage.open()
    try:
        for migration in migrations.load(storage.dialect)[:3]:
            assert await storage._apply(migration)
        now = storage._time(datetime.now(UTC))
        subs = ["import:disqus:guest:bob", "host:alice", "import:token:x", "import:plain"]
        async with storage._transaction():
            for sub in subs:
                await storage._write(
                    "INSERT INTO users (sub, name, role, created_at, updated_at)"
                    " VALUES (?, ?, 'moderator', ?, ?)",
                    (sub, sub.upper(), now, now),
                )
        user_ids = [row[0] for row in await storage._read("SELECT id FROM users ORDER BY id")]
        bob, alice = user_ids[0], user_ids[1]
        thread = await storage.create_thread("t", "T", None, datetime.now(UTC))
        comment = replace(new_comment("By Bob", datetime.now(UTC)), author_id=bob)
        [comment_id] = await storage.insert_comments(thread.id, [comment])

        assert await storage.migrate() == ["0004_user_origin.sql"]

        rows = await storage._read("SELECT id, origin, sub, name, role FROM users ORDER BY id")
        assert [tuple(row)[1:] for row in rows] == [
            ("disqus", "guest:bob", "IMPORT:DISQUS:GUEST:BOB", "user"),
            ("token", "host:alice", "HOST:ALICE", "moderator"),
            ("token", "import:token:x", "IMPORT:TOKEN:X", "moderator"),
            ("token", "import:plain", "IMPORT:PLAIN", "moderator"),
        ]
        [stored] = await storage.comments_by_ids([(thread.id, comment_id)])
        assert stored is not None
        assert stored.author is not None
        assert (stored.author.id, stored.author.identity) == (bob, ("disqus", "guest:bob"))
        signed_in = await storage.upsert_user("import:disqus:guest:bob", "Mallory", None)
        assert signed_in.id not in (bob, alice), "the old sub now names a new token user"
        assert (await storage.upsert_user("host:alice", "Alice", None)).id == alice
    finally:
        await storage.close()


async def test_a_failing_migration_leaves_nothing_behind(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(storage, SQLStorage)
    broken = migrations.Migration(99, "0099_broken.sql", "CREATE TABLE half (x INTEGER);\nNOT SQL;")
    real = migrations.load(storage.dialect)
    monkeypatch.setattr(migrations, "load", lambda dialect: [*real, broken])
    with pytest.raises(Exception, match="syntax error"):
        await storage.migrate()
    assert await storage.pending_migrations() == ["0099_broken.sql"]
    with pytest.raises(Exception, match="half"):
        await storage._read("SELECT COUNT(*) FROM half")
    thread = await storage.create_thread("after", "After", None, datetime.now(UTC))
    assert thread.key == "after", "the storage still writes after the failed migration"


async def pragma(conn: aiosqlite.Connection, statement: str) -> object:
    rows = await conn.execute_fetchall(statement)
    return next(iter(rows))[0]


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    sqlite_url: str,
) -> None:
    storage = SQLiteStorage(sqlite_url.removeprefix("sqlite:///"))
    await storage.open()
    for conn in [storage.writer, *storage._readers]:
        assert await pragma(conn, "PRAGMA journal_mode") == "wal"
        assert await pragma(conn, "PRAGMA foreign_keys") == 1
        assert await pragma(conn, "PRAGMA busy_timeout") == 5000
    await storage.close()


async def test_inserts_keep_every_count(storage: Storage) -> None:
    now = datetime.now(UTC)
    thread = await storage.create_thread("counts", "Counts", None, now)
    [root] = await storage.insert_comments(thread.id, [new_comment("root", now)])
    [child] = await storage.insert_comments(
        thread.id, [new_comment("child", now + timedelta(seconds=1), parent_id=root)]
    )
    await storage.insert_comments(
        thread.id,
        [
            new_comment(f"grandchild {i}", now + timedelta(seconds=2 + i), parent_id=child)
            for i in range(3)
        ],
    )
    root_row, child_row = await storage.comments_by_ids([(thread.id, root), (thread.id, child)])
    assert root_row is not None
    assert child_row is not None
    assert (root_row.reply_count, root_row.descendant_count) == (1, 4)
    assert (child_row.reply_count, child_row.descendant_count, child_row.depth) == (3, 3, 1)
    assert child_row.parent_id == root
    refreshed = (await storage.threads_by_ids([thread.id]))[0]
    assert refreshed is not None
    assert (refreshed.comment_count, refreshed.top_level_count) == (5, 1)


async def stored_rows(storage: SQLStorage) -> int:
    """Rows in every table there is, whatever tables there are."""
    if isinstance(storage, SQLiteStorage):
        catalog = "SELECT name FROM sqlite_schema WHERE type = 'table'"
    else:
        catalog = (
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    tables = [row[0] for row in await storage._read(catalog)]
    return sum([(await storage._read(f"SELECT COUNT(*) FROM {t}"))[0][0] for t in tables])


async def stored_bytes(storage: SQLStorage, key: tuple[int, int]) -> int:
    """Bytes that rows take: on SQLite every record of every table and index (its `dbstat`
    table); on PostgreSQL, whose updated rows may change their size by a few bytes of
    headers, the row of the comment `key` alone."""
    if isinstance(storage, SQLiteStorage):
        rows = await storage._read("SELECT SUM(payload) FROM dbstat WHERE pagetype = 'leaf'")
    else:
        sql = "SELECT pg_column_size(c.*) FROM comments c WHERE c.thread_id = ? AND c.id = ?"
        rows = await storage._read(sql, key)
    return int(rows[0][0])


async def test_a_reply_takes_the_same_room_at_any_depth(storage: Storage) -> None:
    """What a reply stores does not grow with its depth: one new row of the same size at
    depth 3 as at depth 60, so a chain of replies grows linearly, not quadratically. Counted
    in rows, bytes and statements, never in time."""
    assert isinstance(storage, SQLStorage)
    now = datetime.now(UTC)
    writer = await storage.upsert_user("host:writer", "Writer", None)
    thread = await storage.create_thread("deep", "Deep", None, now)
    [parent] = await storage.insert_comments(thread.id, [new_comment("Root", now)])
    whole = isinstance(storage, SQLiteStorage)  # the whole database's bytes, or one row's
    costs: list[tuple[int, int, int]] = []  # (rows, bytes, statements) of each reply
    for depth in range(1, 61):
        rows, size = await stored_rows(storage), await stored_bytes(storage, (thread.id, parent))
        before = storage.statements
        added = await storage.add_comment(
            ThreadRef(id=thread.id),
            replace(new_comment("A reply.", now, parent_id=parent), author_id=writer.id),
            Actor(writer.id),
            parent_thread_id=thread.id,
        )
        statements = storage.statements - before
        parent = added.comment.id
        written = await stored_bytes(storage, (thread.id, parent)) - (size if whole else 0)
        costs.append((await stored_rows(storage) - rows, written, statements))
        assert (added.comment.depth, len(added.ancestor_ids)) == (depth, depth)
    # The first replies differ by a byte or two: SQLite stores the counts 0 and 1 in no
    # bytes at all, and the first reply records its author among the thread's writers.
    assert set(costs[2:]) == {costs[2]}, costs
    assert costs[2][0] == 1, "a reply adds exactly one row"


async def test_a_reply_to_another_thread_is_refused_and_nothing_is_kept(storage: Storage) -> None:
    now = datetime.now(UTC)
    first = await storage.create_thread("a", "A", None, now)
    second = await storage.create_thread("b", "B", None, now)
    [parent] = await storage.insert_comments(first.id, [new_comment("in a", now)])
    with pytest.raises(NotFound):
        await storage.insert_comments(
            second.id, [new_comment("ok", now), new_comment("wrong", now, parent_id=parent)]
        )
    refreshed = (await storage.threads_by_ids([second.id]))[0]
    assert refreshed is not None
    assert refreshed.comment_count == 0
    assert await storage.comment_pages([]) == []


def test_database_urls() -> None:
    assert isinstance(open_storage("sqlite:///data/x.db"), SQLiteStorage)
    assert isinstance(open_storage("postgresql://localhost/threadql"), PostgresStorage)
    with pytest.raises(ValueError, match="names a file"):
        open_storage("sqlite://")
    with pytest.raises(ValueError, match="unsupported"):
        open_storage("mysql://localhost/x")


async def test_version_reads_outlive_their_postgresql_connection(postgres_database: str) -> None:
    """Versions are read on a connection of their own: once it is lost, the read goes through
    the pool and the next one opens it again."""
    async with postgres_schema(postgres_database) as url:
        storage = open_storage(url)
        await storage.open()
        try:
            await storage.migrate()
            thread = await storage.create_thread("lost", "Lost", None, datetime.now(UTC))
            expected = {thread.id: thread.version}
            assert await storage.thread_versions([thread.id]) == expected
            assert isinstance(storage, PostgresStorage)
            async with storage.pool.acquire() as conn:
                ended = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = $1 AND datname = current_database()",
                    VERSIONS_CONNECTION,
                )
            assert ended >= 1
            for _ in range(3):
                before = storage.statements
                assert await storage.thread_versions([thread.id]) == expected
                assert storage.statements == before + 1
        finally:
            await storage.close()


async def test_concurrent_postgresql_version_checks_share_a_statement(
    postgres_database: str,
) -> None:
    """Checks arriving while one is in flight share the next; each sees what was written
    before it asked, and each request counts the statement that served it."""
    async with postgres_schema(postgres_database) as url:
        storage = open_storage(url)
        await storage.open()
        try:
            await storage.migrate()
            now = datetime.now(UTC)
            threads = [await storage.create_thread(f"t{n}", "T", None, now) for n in range(8)]
            user = await storage.upsert_user("host:writer", "Writer", None)
            await storage.add_comment(
                ThreadRef(id=threads[0].id), new_comment("moves it", now), Actor(user.id)
            )
            versions = await storage.thread_versions([t.id for t in threads])
            assert versions[threads[0].id] > versions[threads[1].id]  # the write is seen

            async def check(thread_id: int) -> tuple[dict[int, int], int]:
                counted = [0]
                token = request_statements.set(counted)
                try:
                    return await storage.thread_versions([thread_id]), counted[0]
                finally:
                    request_statements.reset(token)

            before = storage.statements
            answers = await asyncio.gather(*(check(t.id) for t in threads))
            assert [found for found, _ in answers] == [{t.id: versions[t.id]} for t in threads]
            assert all(counted == 1 for _, counted in answers)
            assert storage.statements - before < len(threads)
        finally:
            await storage.close()


async def test_postgresql_connections_go_back_to_the_pool_without_a_reset_round_trip(
    postgres_database: str,
) -> None:
    """No statement follows a read on its connection, and a bulk write's SET LOCAL ends
    with its transaction: there is no session state to reset."""
    async with postgres_schema(postgres_database) as url:
        storage = open_storage(url)
        await storage.open()
        try:
            await storage.migrate()
            thread = await storage.create_thread("pool", "Pool", None, datetime.now(UTC))
            await storage.insert_comments(thread.id, [new_comment("bulk", datetime.now(UTC))])
            assert isinstance(storage, PostgresStorage)
            async with storage.pool.acquire() as conn:
                assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
                await conn.fetchval("SELECT 'the last statement of this connection'")
                pid = await conn.fetchval("SELECT pg_backend_pid()")
            watcher = await asyncpg.connect(storage.dsn)
            try:
                query = "SELECT query FROM pg_stat_activity WHERE pid = $1"
                assert await watcher.fetchval(query, pid) == "SELECT pg_backend_pid()"
            finally:
                await watcher.close()
        finally:
            await storage.close()


async def test_sqlite_version_reads_go_to_a_reader_thread_when_busy(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions are read on the event loop's thread, which must never wait: when SQLite says
    busy there, a reader's thread reads them, waiting as long as its busy timeout allows."""

    class Busy:
        def execute(self, sql: str, params: object) -> NoReturn:
            raise sqlite3.OperationalError("database is locked")

    storage = open_storage(sqlite_url)
    await storage.open()
    try:
        await storage.migrate()
        thread = await storage.create_thread("busy", "Busy", None, datetime.now(UTC))
        monkeypatch.setattr(storage, "_versions", Busy())
        before = storage.statements
        assert await storage.thread_versions([thread.id]) == {thread.id: thread.version}
        assert storage.statements == before + 1
    finally:
        monkeypatch.undo()
        await storage.close()
