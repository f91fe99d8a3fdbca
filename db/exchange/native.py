"""threadql's own dump: `threadql export` writes it, `threadql import json` reads it back.

    {"format": "threadql", "version": 2, "threads": [
    {"key": …, "title": …, "url": …, "createdAt": …, "locked": …, "commentCount": …,
     "users": [{"origin": …, "sub": …, "name": …, "avatarUrl": …}, …],
     "comments": [{"id": 1, "parent": null, "author": "<origin>:<sub>", "state": "VISIBLE",
                   "createdAt": …, "editedAt": …, "body": …, "likeCount": …,
                   "likedBy": ["<origin>:<sub>", …],
                   "revisions": [{"body", "writtenAt", "replacedAt"}],
                   "removedReason": …, "moderatedBy": "<origin>:<sub>"}, …]},
    …]}

Each thread is complete in itself (its users travel with it) and written and read one at a
time. Threads come oldest first; a thread's comments in the order they were written, so a
parent always comes before its replies. A comment's `id` is its place in that order: unlike
a database id it is the same in a dump of the restored thread, and a later dump of the same
database gives the comments it already had the same ids. `commentCount` is there for the
reader; an import counts for itself. Times are UTC with microseconds.

A user is named by origin and sub: `token` users are the host site's, and sign in again with
its tokens after a restore; users of any other origin came from an import and stay out of
every token's reach. A dump carries no roles: tokens give them, at each sign-in. Version 1
named users by sub alone (`import:<origin>:<id>` for imported ones) and is read as well.

The file is read as data from elsewhere: a value of the wrong type or form skips its comment
(or its thread) with the reason counted in the summary, and everything else is held to the
rules every import keeps (db.exchange.plan).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from db.exchange.jsonstream import members
from db.exchange.source import (
    ExchangeError,
    SourceComment,
    SourceThread,
    Unreadable,
    like_count,
    parse_iso,
)
from db.rows import TOKEN, CommentState, NewUser, Revision, format_time
from db.rules import MAX_SUB, text
from db.storage import InvalidInput

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import AsyncIterator, Iterator
    from datetime import datetime
    from pathlib import Path
    from typing import BinaryIO

    from db.exchange.source import Deadline
    from db.rows import CommentRow, Identity, ThreadDump
    from db.storage import Storage

SOURCE = "json"
FORMAT = "threadql"
VERSION = 2
_ORIGIN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_LEGACY = "import"  # version 1's prefix of imported users' subs
_PAGE = 100
_STATES = {state.value: state for state in CommentState}


# -- reading -------------------------------------------------------------------------------


def read(path: Path, skipped: Counter[str], deadline: Deadline) -> Iterator[SourceThread]:
    with path.open(encoding="utf-8") as stream:
        first = True
        version = 1
        try:
            for name, value in members(stream, "threads"):
                if first and (name, value) != ("format", FORMAT):
                    break
                first = False
                if name == "version":
                    if value not in (1, VERSION):
                        raise ExchangeError(
                            f"{path} is of version {value!r}; this is version {VERSION}"
                        )
                    version = value
                if name == "threads":
                    deadline.check()
                    yield _thread(value, version)
        except UnicodeDecodeError as error:
            raise ExchangeError(f"{path} is not UTF-8 text: {error}") from error
        if first:
            raise ExchangeError(f'{path} is not a threadql export: it starts with no "format"')


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Unreadable(f"unreadable {what}")
    return value


def _optional(value: Any, what: str) -> str | None:
    return None if value is None else _string(value, what)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Unreadable(f"unreadable {what}")
    return value


def _time(value: Any) -> datetime | None:
    moment = parse_iso(value) if isinstance(value, str) else None
    if value is not None and moment is None:
        raise Unreadable("unreadable date")
    return moment


def _moment(value: Any) -> datetime:
    moment = _time(value)
    if moment is None:
        raise Unreadable("unreadable date")
    return moment


def _identity(data: dict[str, Any], version: int) -> Identity:
    """A user's origin and sub; a sub is held to what a token's may be."""
    try:
        sub = text(_string(data.get("sub"), "user"), "sub", MAX_SUB)
    except InvalidInput as refused:
        raise Unreadable("unreadable user") from refused
    if version == 1:  # as migration 0004 moved such users over
        prefix, _, rest = sub.partition(":")
        origin, colon, rest = rest.partition(":")
        if prefix == _LEGACY and colon and origin not in ("", TOKEN):
            return (origin, rest)
        return (TOKEN, sub)
    origin = _string(data.get("origin"), "user")
    if not _ORIGIN.fullmatch(origin):
        raise Unreadable("unreadable user")
    return (origin, sub)


def _users(value: Any, version: int) -> dict[str, NewUser]:
    """The thread's users by the name its comments use for them."""
    users: dict[str, NewUser] = {}
    for data in _list(value, "users"):
        if not isinstance(data, dict):
            raise Unreadable("unreadable user")
        origin, sub = _identity(data, version)
        name = _string(data.get("name"), "user")
        avatar = _optional(data.get("avatarUrl"), "user")
        reference = data["sub"] if version == 1 else _reference(origin, sub)
        users[reference] = NewUser(origin, sub, name, avatar)
    return users


def _thread(data: Any, version: int) -> SourceThread:
    try:
        if not isinstance(data, dict):
            raise Unreadable("unreadable thread")
        key = _string(data.get("key"), "key")
        users = _users(data.get("users", []), version)
        raw_comments = _list(data.get("comments", []), "comments")
        locked = data.get("locked", False)
        if not isinstance(locked, bool):
            raise Unreadable("unreadable lock")
        thread = SourceThread(
            key=key,
            title=_optional(data.get("title"), "title") or "",
            url=_optional(data.get("url"), "url"),
            created_at=_time(data.get("createdAt")),
            comments=[],
            locked=locked,
            native=True,
        )
    except Unreadable as unreadable:
        comments = data.get("comments") if isinstance(data, dict) else None
        count = len(comments) if isinstance(comments, list) else 0
        return SourceThread.unreadable(unreadable.reason, count)
    for raw in raw_comments:
        try:
            thread.comments.append(_comment(raw, users))
        except Unreadable as unreadable:
            thread.skipped[unreadable.reason] += 1
    return thread


def _user(value: Any, users: dict[str, NewUser], what: str) -> NewUser | None:
    """The user a comment names; None for none, or for one the thread does not list."""
    return users.get(_string(value, what)) if value is not None else None


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Unreadable(f"unreadable {what}")
    return str(value)


def _comment(data: Any, users: dict[str, NewUser]) -> SourceComment:
    if not isinstance(data, dict):
        raise Unreadable("unreadable comment")
    parent = data.get("parent")
    state = data.get("state", "VISIBLE")
    if not isinstance(state, str) or state not in _STATES:
        raise Unreadable("unreadable state")
    revisions = []
    for revision in _list(data.get("revisions", []), "revision"):
        if not isinstance(revision, dict):
            raise Unreadable("unreadable revision")
        revisions.append(
            Revision(
                _string(revision.get("body"), "revision"),
                _moment(revision.get("writtenAt")),
                _moment(revision.get("replacedAt")),
            )
        )
    return SourceComment(
        id=_id(data.get("id"), "id"),
        parent_id=None if parent is None else _id(parent, "parent"),
        author=_user(data.get("author"), users, "author"),
        body=_string(data.get("body", ""), "body"),
        created_at=_time(data.get("createdAt")),
        state=_STATES[state],
        edited_at=_time(data.get("editedAt")),
        like_count=like_count(data.get("likeCount", 0)),
        liked_by=tuple(
            user
            for user in (_user(v, users, "likes") for v in _list(data.get("likedBy", []), "likes"))
            if user is not None
        ),
        revisions=tuple(revisions),
        removed_reason=_optional(data.get("removedReason"), "reason"),
        moderated_by=_user(data.get("moderatedBy"), users, "moderator"),
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


def _reference(origin: str, sub: str) -> str:
    """How a version 2 dump names a user."""
    return f"{origin}:{sub}"


def thread_document(dump: ThreadDump) -> dict[str, Any]:
    place = {c.id: n for n, c in enumerate(dump.comments, 1)}
    references = {user_id: _reference(u.origin, u.sub) for user_id, u in dump.users.items()}
    return {
        "key": dump.thread.key,
        "title": dump.thread.title,
        "url": dump.thread.url,
        "createdAt": format_time(dump.thread.created_at),
        "locked": dump.thread.locked,
        "commentCount": dump.thread.comment_count,
        "users": [
            {"origin": u.origin, "sub": u.sub, "name": u.name, "avatarUrl": u.avatar_url}
            for u in sorted(dump.users.values(), key=lambda u: u.identity)
        ],
        "comments": [_comment_document(dump, c, place, references) for c in dump.comments],
    }


def _comment_document(
    dump: ThreadDump, comment: CommentRow, place: dict[int, int], references: dict[int, str]
) -> dict[str, Any]:
    moderator, reason = dump.moderation.get(comment.id, (None, None))
    return {
        "id": place[comment.id],
        "parent": place[comment.parent_id] if comment.parent_id is not None else None,
        "author": _reference(comment.author.origin, comment.author.sub) if comment.author else None,
        "state": comment.state.value,
        "createdAt": format_time(comment.created_at),
        "editedAt": format_time(comment.edited_at) if comment.edited_at else None,
        "body": comment.body,
        "likeCount": comment.like_count,
        "likedBy": sorted(references[u] for u in dump.likes.get(comment.id, [])),
        "revisions": [
            {
                "body": r.body,
                "writtenAt": format_time(r.written_at),
                "replacedAt": format_time(r.replaced_at),
            }
            for r in dump.revisions.get(comment.id, [])
        ],
        "removedReason": reason,
        "moderatedBy": references[moderator] if moderator is not None else None,
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
