"""What every reader yields: threads and comments as their source had them, ids still its own."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from db.rows import CommentState, NewUser

if TYPE_CHECKING:
    from db.rows import Revision

ANONYMOUS = "Anonymous"
MAX_NAME = 100  # as for the names that tokens carry
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class ExchangeError(Exception):
    """A file that cannot be read as the format it was given as."""


@dataclass(slots=True)
class SourceComment:
    id: str
    parent_id: str | None
    author: NewUser | None  # None when the source names nobody
    body: str  # Markdown
    created_at: datetime | None  # None when the source's date cannot be read
    hidden: str | None = None  # why the source does not show it: "deleted", "spam", …
    state: CommentState = CommentState.VISIBLE  # threadql's own dumps only
    edited_at: datetime | None = None
    like_count: int = 0
    liked_by: tuple[str, ...] = ()  # subs, among the thread's users
    revisions: tuple[Revision, ...] = ()
    removed_reason: str | None = None
    moderated_by: str | None = None  # a sub, among the thread's users


@dataclass(slots=True)
class SourceThread:
    key: str
    title: str
    url: str | None
    created_at: datetime | None  # None: the oldest comment's date
    comments: list[SourceComment]
    locked: bool = False
    users: list[NewUser] = field(default_factory=list)  # likers and moderators, by sub
    skipped: Counter[str] = field(default_factory=Counter)  # comments left out while reading
    skip: str | None = None  # why the whole thread is left out
    native: bool = False  # a threadql dump: its order, states and empty threads are kept


def clean_text(text: str) -> str:
    """Newlines as `\\n`, no control characters but newlines and tabs, trimmed."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _name(name: str | None) -> str:
    return _SPACE.sub(" ", clean_text(name or ""))[:MAX_NAME].strip()


def guest(source: str, name: str | None) -> NewUser:
    """Someone without an account at the source: one user per name there, or Anonymous."""
    shown = _name(name)
    if not shown:
        return NewUser(f"import:{source}:anonymous", ANONYMOUS)
    return NewUser(f"import:{source}:guest:{shown.casefold()}", shown)


def account(source: str, account_id: str, name: str | None) -> NewUser:
    """Someone with an account at the source, found by its id there whatever their name."""
    return NewUser(f"import:{source}:user:{account_id}", _name(name) or _name(account_id))


def utc(moment: datetime) -> datetime:
    """An aware time in UTC; a time without a zone is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_iso(text: str | None) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(text.strip())) if text else None
    except ValueError:
        return None
