"""The threads Isso is given: the demo thread, and the first 1,000 comments of the generated
10,000-comment thread; posted through Isso's own API, as its readers would.

Isso keeps one level of replies, so a reply further down is posted under its top-level
ancestor (Isso would move it there itself).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from db.demo import DEMO_KEY, fixture

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

POST_TIMEOUT = 30.0


class LoadRefused(RuntimeError):
    """Isso did not store a comment the bench posted."""


@dataclass(frozen=True)
class SourceComment:
    author: str
    body: str
    parent: int | None  # the parent's index in the thread's list, which comes before it


@dataclass(frozen=True)
class SourceThread:
    uri: str
    title: str
    comments: Sequence[SourceComment]


def demo_thread() -> SourceThread:
    data = fixture()
    comments = [SourceComment(c["author"], c["body"], c["parent"]) for c in data["comments"]]
    return SourceThread(f"/{DEMO_KEY}", data["thread"]["title"], comments)


def generated_prefix(database: Path, key: str, count: int) -> SourceThread:
    """The first `count` comments of a generated thread in threadql's SQLite `database`.

    They were inserted depth-first, so every parent among them comes before its replies.
    """
    uri = f"file:{database.resolve()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        title_row = conn.execute("SELECT title FROM threads WHERE key = ?", (key,)).fetchone()
        if title_row is None:
            raise LookupError(f"no thread {key!r} in {database}")
        rows = conn.execute(
            "SELECT c.id, c.parent_id, coalesce(u.name, ''), c.body FROM comments AS c"
            " JOIN threads AS t ON t.id = c.thread_id LEFT JOIN users AS u ON u.id = c.author_id"
            " WHERE t.key = ? ORDER BY c.id LIMIT ?",
            (key, count),
        ).fetchall()
    index = {row[0]: i for i, row in enumerate(rows)}
    comments = [
        SourceComment(author, body, None if parent is None else index[parent])
        for _, parent, author, body in rows
    ]
    if len(comments) != count:
        raise LookupError(f"{key!r} has {len(comments)} comments, not {count}")
    return SourceThread(f"/{key}-{count}", str(title_row[0]), comments)


def top_level_ancestors(comments: Sequence[SourceComment]) -> list[int | None]:
    """For each comment, the index of the top-level comment it is under; None for those."""
    roots: list[int | None] = []
    for comment in comments:
        if comment.parent is None:
            roots.append(None)
        else:
            above = roots[comment.parent]
            roots.append(comment.parent if above is None else above)
    return roots


def post_thread(base_url: str, thread: SourceThread) -> None:
    """Post every comment of `thread` in order, one request each."""
    ids: list[int] = []
    roots = top_level_ancestors(thread.comments)
    with httpx.Client(base_url=base_url, timeout=POST_TIMEOUT) as client:
        for comment, root in zip(thread.comments, roots, strict=True):
            payload = {
                "text": comment.body,
                "author": comment.author,
                "title": thread.title,
                "parent": None if root is None else ids[root],
            }
            response = client.post("/new", params={"uri": thread.uri}, json=payload)
            if response.status_code != 201:
                raise LoadRefused(
                    f"POST /new answered {response.status_code}: {response.text[:300]}"
                )
            ids.append(int(response.json()["id"]))
            # Isso answers each comment with its author's edit cookie; kept, a thousand of
            # them would outgrow the request headers that gunicorn accepts.
            client.cookies.clear()


def count_comments(answer: dict[str, Any]) -> int:
    """Every comment in an answer of Isso's `GET /?uri=…`, replies included."""
    replies: list[dict[str, Any]] = answer.get("replies") or []
    return len(replies) + sum(count_comments(reply) for reply in replies)
