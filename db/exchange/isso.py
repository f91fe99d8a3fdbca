"""Isso's SQLite database, opened read-only and read one thread at a time.

Isso keeps what the commenter typed (Markdown), dates as Unix times, and a comment's `mode`:
1 published, 2 waiting for moderation, 4 deleted but kept for its replies.

SQLite stores any value in any column, and a file may hold views where Isso has tables: each
value is checked for the type Isso writes, text that is not UTF-8 is read with its bad bytes
replaced, and SQLite itself stops a read that runs past the import's deadline.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from db.exchange.source import (
    ExchangeError,
    SourceComment,
    SourceThread,
    Unreadable,
    guest,
    like_count,
    utc,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from db.exchange.source import Deadline

SOURCE = "isso"
_HIDDEN = {1: None, 2: "not approved", 4: "deleted"}
_PROGRESS_STEPS = 10_000  # SQLite's virtual machine steps between two looks at the deadline


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return utc(datetime.fromtimestamp(value, UTC))
    except (ValueError, OverflowError, OSError):
        return None


def _text(value: Any, what: str) -> str:
    """Text, or "" for NULL; anything else is not what Isso writes."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Unreadable(f"unreadable {what}")
    return value


def _comment(row: sqlite3.Row) -> SourceComment:
    parent = row["parent"]
    if not (parent is None or isinstance(parent, int | str)):
        raise Unreadable("unreadable parent")
    modified = _time(row["modified"])
    if row["modified"] is not None and modified is None:
        raise Unreadable("unreadable date")
    return SourceComment(
        id=str(row["id"]),
        parent_id=str(parent) if parent is not None else None,
        author=guest(SOURCE, _text(row["author"], "author")),
        body=_text(row["text"], "body"),
        created_at=_time(row["created"]),
        edited_at=modified,
        like_count=like_count(row["likes"] or 0),
        hidden=_HIDDEN.get(row["mode"], "not approved"),
    )


def _thread(row: sqlite3.Row, rows: list[sqlite3.Row]) -> SourceThread:
    try:
        key = _text(row["uri"], "key")
        title = _text(row["title"], "title")
    except Unreadable as unreadable:
        return SourceThread.unreadable(unreadable.reason, len(rows))
    comments: list[SourceComment] = []
    skipped: Counter[str] = Counter()
    for comment_row in rows:
        try:
            comments.append(_comment(comment_row))
        except Unreadable as unreadable:
            skipped[unreadable.reason] += 1
    return SourceThread(
        key=key,
        title=title or key,
        url=None,  # Isso knows the page's path only
        created_at=None,
        comments=comments,
        skipped=skipped,
    )


def read(path: Path, skipped: Counter[str], deadline: Deadline) -> Iterator[SourceThread]:
    if not path.is_file():
        raise ExchangeError(f"{path} is not a file")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise ExchangeError(f"{path} cannot be opened: {error}") from error
    with closing(connection):
        connection.row_factory = sqlite3.Row
        connection.text_factory = lambda data: data.decode("utf-8", "replace")
        connection.set_progress_handler(deadline.passed, _PROGRESS_STEPS)

        def rows(sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
            try:
                return connection.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                deadline.check()  # a read the deadline interrupted
                raise ExchangeError(f"{path} is not an Isso database: {error}") from error

        tables = {row[0] for row in rows("SELECT name FROM sqlite_master")}
        if not {"threads", "comments"} <= tables:
            raise ExchangeError(f"{path} is not an Isso database: it has no threads or comments")
        for thread in rows("SELECT id, uri, title FROM threads ORDER BY id"):
            found = rows(
                "SELECT id, parent, created, modified, mode, text, author, likes"
                " FROM comments WHERE tid = ? ORDER BY id",
                (thread["id"],),
            )
            if found:
                yield _thread(thread, found)
