"""PostgreSQL and Redis for the bench: are they there, and a throwaway database to work in."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis
import redis.exceptions

if TYPE_CHECKING:
    from collections.abc import Iterator

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
CONNECT_TIMEOUT = 5.0
DATABASE_PREFIX = "threadql_bench_"


class Unavailable(RuntimeError):
    """A service the bench wanted cannot be used; the message says why."""


def postgres_version(admin_url: str) -> str:
    """The server's version, or `Unavailable` with the reason."""
    try:
        version = asyncio.run(_fetch(admin_url, "SHOW server_version"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise Unavailable(f"PostgreSQL at {_where(admin_url)} cannot be used: {error}") from error
    return f"PostgreSQL {version.split()[0]}"


def redis_version(url: str) -> str:
    """The server's version, or `Unavailable` with the reason."""
    client = redis.Redis.from_url(
        url, socket_timeout=CONNECT_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT
    )
    try:
        info = client.info("server")
    except (OSError, redis.exceptions.RedisError) as error:
        raise Unavailable(f"Redis at {_where(url)} cannot be used: {error}") from error
    finally:
        client.close()
    return f"Redis {info.get('redis_version', '(version unknown)')}"


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create `threadql_bench_<random hex>` and yield its URL; drop it however the block ends.

    `Unavailable` if it cannot be created.
    """
    name = DATABASE_PREFIX + secrets.token_hex(6)
    try:
        asyncio.run(_execute(admin_url, f"CREATE DATABASE {name}"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise Unavailable(f"cannot create a database at {_where(admin_url)}: {error}") from error
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        # FORCE: a server that was killed may have left connections behind.
        asyncio.run(_execute(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _fetch(admin_url: str, query: str) -> str:
    conn = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT)
    try:
        return str(await conn.fetchval(query))
    finally:
        await conn.close()


async def _execute(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _where(url: str) -> str:
    """Host and port only: a URL may hold a password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
