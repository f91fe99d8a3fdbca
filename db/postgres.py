"""PostgreSQL storage on asyncpg: a pool, row locks per thread, arrays instead of long lists."""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import asyncpg

from db.shared import SharedReads
from db.sql import SQLStorage, request_statements

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from datetime import datetime

    from db.migrations import Migration

# A constant key for pg_advisory_lock: one process migrates at a time.
MIGRATION_LOCK = 0x7468_7265_6164  # "thread"
_PLACEHOLDER = re.compile(r"\?")
VERSIONS_CONNECTION = "threadql-versions"  # its application_name, as pg_stat_activity shows it
# Whatever the versions' connection fails with, after which the pool takes the read.
_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


@lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, …`."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


async def _no_session_state(connection: asyncpg.Connection) -> None:
    """A returned connection needs only what asyncpg always does: roll back a transaction
    left open. threadql leaves no session state (settings are SET LOCAL, advisory locks are
    the transaction's, nothing LISTENs), so the default reset, a round trip of four
    statements after every read, would undo nothing."""


class PostgresStorage(SQLStorage):
    dialect = "postgresql"
    max_list = 1_000_000  # lists travel as one array parameter

    def __init__(self, dsn: str, min_size: int = 2, max_size: int = 10) -> None:
        super().__init__()
        self.dsn = dsn
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._versions: asyncpg.Connection | None = None
        self._versions_turn = asyncio.Lock()
        self._shared_versions = SharedReads(self._counted_versions)
        self._connection: ContextVar[asyncpg.pool.PoolConnectionProxy | None] = ContextVar(
            "threadql_write_connection", default=None
        )

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=self._sizes[0], max_size=self._sizes[1], reset=_no_session_state
        )

    async def close(self) -> None:
        await self._shared_versions.close()
        if self._versions is not None:
            await self._versions.close()
            self._versions = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("storage is not open")
        return self._pool

    def _writer(self) -> asyncpg.pool.PoolConnectionProxy:
        conn = self._connection.get()
        if conn is None:
            raise RuntimeError("a write statement outside a transaction")
        return conn

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.statements += 1
        return list(await self.pool.fetch(numbered(sql), *params))

    async def thread_versions(self, ids: Sequence[int]) -> dict[int, int]:
        """Checks arriving while one is in flight share the next statement (`SharedReads`);
        each request whose check it served counts it among its own."""
        versions, statements = await self._shared_versions(set(ids))
        counter = request_statements.get()
        if counter is not None:
            counter[0] += statements
        return {i: versions[i] for i in ids if i in versions}

    async def _counted_versions(self, ids: list[int]) -> tuple[dict[int, int], int]:
        before = self.statements
        versions = await super().thread_versions(ids)
        return versions, self.statements - before

    async def _read_versions(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """On a connection of their own, one read at a time: a pool resets each connection it
        takes back, a round trip of four statements that cost more than the read itself.
        Should that connection fail (the server restarted, or ended it), the read goes through
        the pool, where an error of the read itself shows again, and the next one reconnects."""
        async with self._versions_turn:
            try:
                if self._versions is None or self._versions.is_closed():
                    self._versions = await asyncpg.connect(
                        self.dsn, server_settings={"application_name": VERSIONS_CONNECTION}
                    )
                rows = await self._versions.fetch(numbered(sql), *params)
            except _FAILURES:
                broken, self._versions = self._versions, None
                if broken is not None:
                    broken.terminate()
                return await self._read(sql, params)
        self.statements += 1
        return list(rows)

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.statements += 1
        return list(await self._writer().fetch(numbered(sql), *params))

    async def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.statements += 1
        await self._writer().executemany(numbered(sql), rows)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        async with self.pool.acquire() as conn, conn.transaction():
            token = self._connection.set(conn)
            try:
                yield
            finally:
                self._connection.reset(token)

    async def _prepare_bulk_write(self) -> None:
        # A plan cached early in a long batch (the foreign-key checks' among them) was made
        # for a table that small: each row would then scan every row before it.
        await self._write("SET LOCAL plan_cache_mode = force_custom_plan")

    async def _lock_thread(self, thread_id: int) -> bool | None:
        # Writes to one thread take turns on its row; writes to other threads go on.
        rows = await self._write("SELECT locked FROM threads WHERE id = ? FOR UPDATE", (thread_id,))
        return bool(rows[0][0]) if rows else None

    def _in(self, column: str, values: Sequence[Any], kind: str) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?::{kind}[])", [list(values)]

    def _time(self, moment: datetime) -> Any:
        return moment

    async def _apply(self, migration: Migration) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            if await conn.fetchval(
                "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
            ):
                return False
            self.statements += 1
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            return True

    async def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """The planner's lines for a statement, to show that it uses its index."""
        rows = await self._read(f"EXPLAIN {sql}", params)
        return [row[0] for row in rows]
