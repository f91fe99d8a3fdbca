"""Isso's SQLite database, opened read-only and read one thread at a time.

Isso keeps what the commenter typed (Markdown), dates as Unix times, and a comment's `mode`:
1 published, 2 waiting for moderation, 4 deleted but kept for its replies.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from db.exchange.source import ExchangeError, SourceComment, SourceThread, clean_text, guest

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterator
    from pathlib import Path

SOURCE = "isso"
_HIDDEN = {1: None, 2: "not approved", 4: "deleted"}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC) if value is not None else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _comment(row: sqlite3.Row) -> SourceComment:
    return SourceComment(
        id=str(row["id"]),
        parent_id=str(row["parent"]) if row["parent"] is not None else None,
        author=guest(SOURCE, row["author"]),
        body=clean_text(row["text"] or ""),
        created_at=_time(row["created"]),
        edited_at=_time(row["modified"]),
        like_count=max(0, int(row["likes"] or 0)),
        hidden=_HIDDEN.get(row["mode"], "not approved"),
    )


def read(path: Path, skipped: Counter[str]) -> Iterator[SourceThread]:
    if not path.is_file():
        raise ExchangeError(f"{path} is not a file")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise ExchangeError(f"{path} cannot be opened: {error}") from error
    with closing(connection):
        connection.row_factory = sqlite3.Row
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as error:
            raise ExchangeError(f"{path} is not an SQLite database: {error}") from error
        if not {"threads", "comments"} <= tables:
            raise ExchangeError(f"{path} is not an Isso database: it has no threads or comments")
        threads = connection.execute("SELECT id, uri, title FROM threads ORDER BY id").fetchall()
        for thread in threads:
            rows = connection.execute(
                "SELECT id, parent, created, modified, mode, text, author, likes"
                " FROM comments WHERE tid = ? ORDER BY id",
                (thread["id"],),
            ).fetchall()
            if rows:
                key = thread["uri"] or ""
                yield SourceThread(
                    key=key,
                    title=clean_text(thread["title"] or "") or key,
                    url=None,  # Isso knows the page's path only
                    created_at=None,
                    comments=[_comment(row) for row in rows],
                )
