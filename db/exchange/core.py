"""An import run: each thread a reader yields is planned, then written in one transaction."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from db.exchange.plan import plan_thread
from db.exchange.source import TimedOut
from db.rules import MAX_KEY, text
from db.storage import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from db.exchange.source import Deadline, SourceThread
    from db.storage import Storage


@dataclass(frozen=True, slots=True)
class Limits:
    """What an import holds to: the API's longest body, and a time bound on the whole run."""

    max_body_length: int = 10_000
    timeout: float = 3600.0  # seconds


@dataclass(slots=True)
class Summary:
    threads_created: int = 0
    threads_extended: int = 0  # existed, and took new comments
    threads_unchanged: int = 0  # imported before, nothing new
    comments: int = 0
    users: int = 0  # new users
    orphans: int = 0  # replies whose parent is missing, imported at the top level
    already: int = 0  # comments an earlier run imported
    skipped: Counter[str] = field(default_factory=Counter)  # comments, by reason
    skipped_threads: Counter[str] = field(default_factory=Counter)

    @property
    def threads(self) -> int:
        return self.threads_created + self.threads_extended

    def lines(self) -> list[str]:
        lines = [
            f"imported {counted(self.comments, 'comment')} in {counted(self.threads, 'thread')}"
            f" ({self.threads_created} new, {self.threads_extended} added to),"
            f" {counted(self.users, 'new user')}",
        ]
        if self.already or self.threads_unchanged:
            lines.append(
                f"already imported: {counted(self.already, 'comment')},"
                f" {counted(self.threads_unchanged, 'thread')} with nothing new"
            )
        if self.orphans:
            lines.append(f"replies to a missing comment, imported at the top level: {self.orphans}")
        for what, counts in (("comment", self.skipped), ("thread", self.skipped_threads)):
            if counts:
                reasons = "; ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
                lines.append(f"skipped {counted(counts.total(), what)} ({reasons})")
        return lines


def counted(count: int, noun: str) -> str:
    """`1 thread`, `2 threads`: a count with its noun in the right number."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


async def import_threads(
    storage: Storage,
    source: str,
    threads: Iterable[SourceThread],
    *,
    deadline: Deadline,
    max_body_length: int,
    key: str | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Import every thread, or only the one whose key is `key`. A thread is written whole or
    not at all; threads written before a failure stay, and running again adds the rest.

    Past the deadline the import stops (TimedOut): between threads, while a reader reads
    (`threads` checks it), or by cancelling a thread's write, which rolls it back."""
    summary = Summary()
    try:
        async with asyncio.timeout(deadline.remaining()):
            for thread in threads:
                deadline.check()
                if key is None or thread.key == key:
                    await _import_thread(storage, source, thread, summary, max_body_length)
                    if progress is not None:
                        progress(summary)
    except TimedOut as error:
        error.summary = summary
        raise
    except TimeoutError as error:
        raise TimedOut(deadline.seconds, summary) from error
    return summary


def _key_refusal(key: str) -> str:
    """Why a thread cannot have this key, as the API would refuse it; "" when it can."""
    if not key:
        return "no page key"
    try:
        if text(key, "key", MAX_KEY) != key:
            return "`key` has white space around it"
    except InvalidInput as refused:
        return refused.message
    return ""


async def _import_thread(
    storage: Storage, source: str, thread: SourceThread, summary: Summary, max_body_length: int
) -> None:
    skip = thread.skip or _key_refusal(thread.key)
    imported = await storage.imported_ids(thread.key, source) if not skip else {}
    if thread.native and thread.comments and not imported and not skip:
        # A dump read back into the database it came from would double every comment.
        [existing] = await storage.threads_by_keys([thread.key])
        skip = "exists, and not from a dump" if existing is not None else ""
    if skip:
        summary.skipped_threads[skip] += 1
        summary.skipped["in a skipped thread"] += len(thread.comments) + thread.skipped.total()
        return
    plan = plan_thread(thread, source, imported, max_body_length)
    summary.skipped.update(plan.skipped)
    summary.orphans += plan.orphans
    summary.already += plan.already
    if not plan.thread.comments and not thread.native:
        if imported:
            summary.threads_unchanged += 1
        else:
            summary.skipped_threads["nothing to import"] += 1
        return
    result = await storage.import_thread(plan.thread)
    summary.comments += len(result.comment_ids)
    summary.users += result.new_users
    if result.created:
        summary.threads_created += 1
    elif result.comment_ids:
        summary.threads_extended += 1
    else:
        summary.threads_unchanged += 1
