"""SQLite storage on aiosqlite: one writer connection, a few readers, WAL in between."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from db.rows import format_time
from db.sql import SQLStorage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from db.migrations import Migration


def _statements(script: str) -> list[str]:
    """The statements of a script, split where SQLite itself sees one end."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


class SQLiteStorage(SQLStorage):
    dialect = "sqlite"
    # SQLite's bound-parameter limit is 32,766; lists stay well under it.
    max_list = 10_000

    def __init__(self, path: str | Path, readers: int = 2) -> None:
        super().__init__()
        self.path = Path(path)
        self._reader_count = readers
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(readers))
        self._writer: aiosqlite.Connection | None = None
        self._versions: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        # WAL lets readers run beside the writer; FULL makes every commit durable
        # once acknowledged, even through a power loss.
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        self._readers = [await self._connect() for _ in range(self._reader_count)]
        # No busy timeout: it is read on the event loop's thread, which must never wait.
        self._versions = sqlite3.connect(self.path, isolation_level=None)
        self._versions.execute("PRAGMA query_only = ON")

    async def close(self) -> None:
        for conn in [*self._readers, *([self._writer] if self._writer else [])]:
            await conn.close()
        if self._versions is not None:
            self._versions.close()
        self._readers, self._writer, self._versions = [], None, None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("storage is not open")
        return self._writer

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.statements += 1
        conn = self._readers[next(self._next_reader)]
        return list(await conn.execute_fetchall(sql, params))

    async def _read_versions(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """On the event loop's thread: a read by primary key takes microseconds, a tenth of a
        hand-off to a reader's thread, and in WAL mode it does not wait for the writer. In the
        rare moments when WAL mode still answers a reader busy (recovering a log after a crash,
        the last connection removing it), a reader's thread waits instead."""
        if self._versions is None:
            raise RuntimeError("storage is not open")
        try:
            rows = self._versions.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return await self._read(sql, params)
        self.statements += 1
        return rows

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.statements += 1
        return list(await self.writer.execute_fetchall(sql, params))

    async def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.statements += 1
        await self.writer.executemany(sql, rows)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """One write transaction at a time, on the one writer connection."""
        async with self._write_lock:
            await self._write("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self.writer.rollback()
                raise
            await self.writer.commit()

    async def _lock_thread(self, thread_id: int) -> bool | None:
        # BEGIN IMMEDIATE already holds the whole database for this transaction.
        rows = await self._write("SELECT locked FROM threads WHERE id = ?", (thread_id,))
        return bool(rows[0][0]) if rows else None

    async def _prepare_bulk_write(self) -> None:
        """Nothing to do: without ANALYZE, SQLite plans never depend on a table's size."""

    def _in(self, column: str, values: Sequence[Any], kind: str) -> tuple[str, list[Any]]:
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def _time(self, moment: datetime) -> Any:
        return format_time(moment)

    async def _apply(self, migration: Migration) -> bool:
        # Statement by statement inside one immediate transaction: another process
        # migrating the same file waits, then finds the migration applied.
        async with self._transaction():
            await self._write(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = await self._write(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            )
            if done:
                return False
            for statement in _statements(migration.sql):
                await self._write(statement)
            await self._write(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, format_time(datetime.now(UTC))),
            )
            return True

    async def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """`EXPLAIN QUERY PLAN` details, to show that a query uses its index."""
        rows = await self._read(f"EXPLAIN QUERY PLAN {sql}", params)
        return [row[3] for row in rows]
