"""What every reader yields: threads and comments as their source had them, ids still its own."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from db.rows import CommentState, NewUser
from db.rules import MAX_COUNT, MAX_NAME, MAX_SUB, line

if TYPE_CHECKING:
    from db.exchange.core import Summary
    from db.rows import Revision

ANONYMOUS = "Anonymous"
# Dates a comment can have been written on; others are no date, whatever the source says.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


class ExchangeError(Exception):
    """A file that cannot be read as the format it was given as."""


class TimedOut(ExchangeError):
    """The import ran past its time bound; threads written before it stay, as `summary` says."""

    def __init__(self, seconds: float, summary: Summary | None = None) -> None:
        super().__init__(
            f"stopped after {seconds:g} s, the import's time bound: the threads imported"
            " so far stay, and running it again adds the rest"
        )
        self.summary = summary


class Unreadable(Exception):
    """A value that is not what its format says it is: the comment or thread holding it is
    skipped, and `reason` counted in the summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Deadline:
    """When an import must stop: checked between threads, and by SQLite while it reads."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        if self.passed():
            raise TimedOut(self.seconds)


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
    liked_by: tuple[NewUser, ...] = ()
    revisions: tuple[Revision, ...] = ()
    removed_reason: str | None = None
    moderated_by: NewUser | None = None


@dataclass(slots=True)
class SourceThread:
    key: str
    title: str
    url: str | None
    created_at: datetime | None  # None: the oldest comment's date
    comments: list[SourceComment]
    locked: bool = False
    skipped: Counter[str] = field(default_factory=Counter)  # comments left out while reading
    skip: str | None = None  # why the whole thread is left out
    native: bool = False  # a threadql dump: its order, states and empty threads are kept

    @classmethod
    def unreadable(cls, reason: str, comments: int) -> SourceThread:
        """A thread left out whole, with the `comments` it held."""
        skipped = Counter({"in a skipped thread": comments})
        return cls("", "", None, None, [], skipped=skipped, skip=reason)


def guest(source: str, name: str | None) -> NewUser:
    """Someone without an account at the source: one user per name there, or Anonymous."""
    shown = line(name or "", MAX_NAME)
    if not shown:
        return NewUser(source, "anonymous", ANONYMOUS)
    return NewUser(source, f"guest:{shown.casefold()}", shown)


def account(source: str, account_id: str, name: str | None) -> NewUser:
    """Someone with an account at the source, found by its id there whatever their name; an
    id too long to be one is no account, and they are a guest."""
    sub = f"user:{account_id}"
    if len(sub) > MAX_SUB:
        return guest(source, name)
    return NewUser(source, sub, line(name or "", MAX_NAME) or line(account_id, MAX_NAME))


def like_count(value: object) -> int:
    """A count of likes as a source gives it: a whole number the database holds."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise Unreadable("unreadable like count")
    return value


def utc(moment: datetime) -> datetime | None:
    """An aware time in UTC, a time without a zone taken as UTC; None for a time outside the
    years comments are written in, or with no UTC equivalent."""
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return moment if _EARLIEST <= moment <= _LATEST else None


def parse_iso(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        return None
    return utc(moment) if moment is not None else None
