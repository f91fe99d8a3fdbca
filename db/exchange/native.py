"""threadql's own dump: `threadql export` writes it, `threadql import json` reads it back.

    {"format": "threadql", "version": 1, "threads": [
    {"key": …, "title": …, "url": …, "createdAt": …, "locked": …, "commentCount": …,
     "users": [{"sub": …, "name": …, "avatarUrl": …, "role": …}, …],
     "comments": [{"id": 1, "parent": null, "author": sub, "state": "VISIBLE",
                   "createdAt": …, "editedAt": …, "body": …, "likeCount": …,
                   "likedBy": [sub, …], "revisions": [{"body", "writtenAt", "replacedAt"}],
                   "removedReason": …, "moderatedBy": sub}, …]},
    …]}

Each thread is complete in itself (its users travel with it) and written and read one at a
time. Threads come oldest first; a thread's comments in the order they were written, so a
parent always comes before its replies. A comment's `id` is its place in that order: unlike
a database id it is the same in a dump of the restored thread, and a later dump of the same
database gives the comments it already had the same ids. `commentCount` is there for the
reader; an import counts for itself. Times are UTC with microseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from db.exchange.jsonstream import members
from db.exchange.source import ExchangeError, SourceComment, SourceThread, parse_iso
from db.rows import CommentState, NewUser, Revision, format_time

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import AsyncIterator, Iterator
    from datetime import datetime
    from pathlib import Path
    from typing import BinaryIO

    from db.rows import CommentRow, ThreadDump
    from db.storage import Storage

SOURCE = "json"
FORMAT = "threadql"
VERSION = 1
_ROLES = ("user", "moderator", "admin")
_PAGE = 100


# -- reading -------------------------------------------------------------------------------


def read(path: Path, skipped: Counter[str]) -> Iterator[SourceThread]:
    with path.open(encoding="utf-8") as stream:
        first = True
        try:
            for name, value in members(stream, "threads"):
                if first and (name, value) != ("format", FORMAT):
                    break
                first = False
                if name == "version" and value != VERSION:
                    raise ExchangeError(f"{path} is of version {value}; this is version {VERSION}")
                if name == "threads":
                    yield _thread(value)
        except UnicodeDecodeError as error:
            raise ExchangeError(f"{path} is not UTF-8 text: {error}") from error
        if first:
            raise ExchangeError(f'{path} is not a threadql export: it starts with no "format"')


def _time(value: Any, what: str) -> datetime | None:
    moment = parse_iso(value) if isinstance(value, str) else None
    if value is not None and moment is None:
        raise ExchangeError(f"{what}: {value!r} is not a time")
    return moment


def _moment(value: Any, what: str) -> datetime:
    moment = _time(value, what)
    if moment is None:
        raise ExchangeError(f"{what} is missing")
    return moment


def _thread(data: Any) -> SourceThread:
    try:
        users = {
            u["sub"]: NewUser(
                u["sub"],
                u["name"],
                u.get("avatarUrl"),
                u.get("role") if u.get("role") in _ROLES else "user",
            )
            for u in data.get("users", [])
        }
        return SourceThread(
            key=data["key"],
            title=data["title"],
            url=data.get("url"),
            created_at=_time(data.get("createdAt"), "createdAt"),
            comments=[_comment(c, users) for c in data.get("comments", [])],
            locked=bool(data.get("locked", False)),
            users=list(users.values()),
            native=True,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        key = data.get("key") if isinstance(data, dict) else None
        raise ExchangeError(f"thread {key!r} is not as an export writes it: {error!r}") from error


def _comment(data: dict[str, Any], users: dict[str, NewUser]) -> SourceComment:
    parent = data.get("parent")
    return SourceComment(
        id=str(data["id"]),
        parent_id=None if parent is None else str(parent),
        author=users.get(data.get("author") or ""),
        body=data.get("body", ""),
        created_at=_time(data.get("createdAt"), "createdAt"),
        state=CommentState(data.get("state", "VISIBLE")),
        edited_at=_time(data.get("editedAt"), "editedAt"),
        like_count=max(0, int(data.get("likeCount", 0))),
        liked_by=tuple(data.get("likedBy", [])),
        revisions=tuple(
            Revision(
                r["body"],
                _moment(r["writtenAt"], "writtenAt"),
                _moment(r["replacedAt"], "replacedAt"),
            )
            for r in data.get("revisions", [])
        ),
        removed_reason=data.get("removedReason"),
        moderated_by=data.get("moderatedBy"),
    )


# -- writing -------------------------------------------------------------------------------


async def _all_thread_ids(storage: Storage) -> AsyncIterator[int]:
    after: int | None = None
    while True:
        page = await storage.thread_page(after, _PAGE, oldest_first=True)
        for thread in page:
            yield thread.id
        if len(page) < _PAGE:
            return
        after = page[-1].id


async def _one(thread_id: int) -> AsyncIterator[int]:
    yield thread_id


def thread_document(dump: ThreadDump) -> dict[str, Any]:
    place = {c.id: n for n, c in enumerate(dump.comments, 1)}
    subs = {user_id: user.sub for user_id, user in dump.users.items()}
    return {
        "key": dump.thread.key,
        "title": dump.thread.title,
        "url": dump.thread.url,
        "createdAt": format_time(dump.thread.created_at),
        "locked": dump.thread.locked,
        "commentCount": dump.thread.comment_count,
        "users": [
            {"sub": u.sub, "name": u.name, "avatarUrl": u.avatar_url, "role": u.role}
            for u in sorted(dump.users.values(), key=lambda u: u.sub)
        ],
        "comments": [_comment_document(dump, c, place, subs) for c in dump.comments],
    }


def _comment_document(
    dump: ThreadDump, comment: CommentRow, place: dict[int, int], subs: dict[int, str]
) -> dict[str, Any]:
    moderator, reason = dump.moderation.get(comment.id, (None, None))
    return {
        "id": place[comment.id],
        "parent": place[comment.parent_id] if comment.parent_id is not None else None,
        "author": comment.author.sub if comment.author else None,
        "state": comment.state.value,
        "createdAt": format_time(comment.created_at),
        "editedAt": format_time(comment.edited_at) if comment.edited_at else None,
        "body": comment.body,
        "likeCount": comment.like_count,
        "likedBy": sorted(subs[u] for u in dump.likes.get(comment.id, [])),
        "revisions": [
            {
                "body": r.body,
                "writtenAt": format_time(r.written_at),
                "replacedAt": format_time(r.replaced_at),
            }
            for r in dump.revisions.get(comment.id, [])
        ],
        "removedReason": reason,
        "moderatedBy": subs[moderator] if moderator is not None else None,
    }


async def export(storage: Storage, out: BinaryIO, key: str | None = None) -> tuple[int, int]:
    """Write the dump a thread at a time, all threads oldest first or the one with `key`;
    the number of threads and comments written."""
    ids = _all_thread_ids(storage)
    if key is not None:
        [thread] = await storage.threads_by_keys([key])
        if thread is None:
            raise ExchangeError(f"no thread has the key {key!r}")
        ids = _one(thread.id)
    out.write(b'{"format": "%s", "version": %d, "threads": [' % (FORMAT.encode(), VERSION))
    threads = comments = 0
    async for thread_id in ids:
        dump = await storage.thread_dump(thread_id)
        if dump is None:
            continue
        out.write(b",\n" if threads else b"\n")
        out.write(orjson.dumps(thread_document(dump)))
        threads += 1
        comments += len(dump.comments)
    out.write(b"\n]}\n")
    return threads, comments
