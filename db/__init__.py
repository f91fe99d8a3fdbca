"""Storage: rows, the storage interface, its backends, migrations and demo data."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from db.postgres import PostgresStorage
from db.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from db.storage import Storage


def open_storage(url: str) -> Storage:
    """A storage for a database URL; `sqlite:///relative/path` or `sqlite:////absolute/path`."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"a SQLite URL names a file: sqlite:///path/to/file.db, not {url!r}")
        return SQLiteStorage(path)
    if parts.scheme in ("postgresql", "postgres"):
        return PostgresStorage(url)
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r} in {url!r}")
