"""One thread from a source made into one import: which comments go in, under which parent,
in which order. No I/O: every messy case of every format is decided here, the same way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from db.exchange.source import guest
from db.render import render_html, render_text
from db.rows import CommentState, ImportedComment, ImportedThread

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from db.exchange.source import SourceComment, SourceThread
    from db.rows import NewUser

_FILE_ORDER = datetime(1970, 1, 1, tzinfo=UTC)  # the date every comment sorts by in a dump


@dataclass(slots=True)
class Plan:
    thread: ImportedThread
    skipped: Counter[str]  # comments left out, by reason
    orphans: int  # replies whose parent is missing, imported at the top level
    already: int  # comments an earlier run imported


@dataclass(slots=True)
class _Candidate:
    position: int  # in the file
    comment: SourceComment
    created_at: datetime
    hidden: str | None  # why it would be a placeholder: kept only above a visible reply


def _hidden(comment: SourceComment) -> str | None:
    if comment.hidden:
        return comment.hidden
    if comment.state is CommentState.VISIBLE and not comment.body.strip():
        return "empty body"
    return None


def _break_cycles(
    parents: dict[str, str | None], order: Callable[[str], tuple[datetime, int]]
) -> set[str]:
    """Make the oldest comment of each cycle of parents a top-level one; return those."""
    done: set[str] = set()
    broken: set[str] = set()
    for start in parents:
        path: dict[str, int] = {}  # comment id -> its place on the path
        node: str | None = start
        while node is not None and node in parents and node not in done:
            if node in path:
                oldest = min(list(path)[path[node] :], key=order)
                parents[oldest] = None
                broken.add(oldest)
                break
            path[node] = len(path)
            node = parents[node]
        done.update(path)
    return broken


def _candidates(
    thread: SourceThread, imported: Mapping[str, int], skipped: Counter[str]
) -> tuple[dict[str, _Candidate], int]:
    """The comments that may go in, by id; and how many an earlier run imported."""
    candidates: dict[str, _Candidate] = {}
    seen: set[str] = set()
    already = 0
    for position, comment in enumerate(thread.comments):
        if comment.id in seen:
            skipped["duplicate id"] += 1
        elif comment.id in imported:
            already += 1
        elif comment.created_at is None:
            skipped["unreadable date"] += 1
        else:
            hidden = _hidden(comment)
            candidates[comment.id] = _Candidate(position, comment, comment.created_at, hidden)
        seen.add(comment.id)
    return candidates, already


def _kept(
    candidates: dict[str, _Candidate], parents: dict[str, str | None], skipped: Counter[str]
) -> set[str]:
    """Placeholders go in only above something visible, as the API keeps them."""
    kept: set[str] = set()
    for comment_id, candidate in candidates.items():
        node: str | None = comment_id if candidate.hidden is None else None
        while node is not None and node in candidates and node not in kept:
            kept.add(node)
            node = parents[node]
    for comment_id, candidate in candidates.items():
        if comment_id not in kept:
            skipped[f"{candidate.hidden}, no replies"] += 1
    return kept


def _places(
    kept: set[str],
    parents: dict[str, str | None],
    order: Callable[[str], tuple[datetime, int]],
) -> dict[str, int]:
    """Each comment's place in the batch: in `order`, each parent before its replies."""
    index: dict[str, int] = {}
    for comment_id in sorted(kept, key=order):
        chain: list[str] = []
        node: str | None = comment_id
        while node is not None and node in kept and node not in index:
            chain.append(node)
            node = parents[node]
        for link in reversed(chain):
            index[link] = len(index)
    return index


def plan_thread(thread: SourceThread, source: str, imported: Mapping[str, int]) -> Plan:
    """`imported`: ids of this thread's comments that an earlier run brought in, by source id."""
    skipped: Counter[str] = Counter(thread.skipped)
    candidates, already = _candidates(thread, imported, skipped)

    def order(comment_id: str) -> tuple[datetime, int]:
        """Oldest first; a dump as it was written."""
        candidate = candidates[comment_id]
        moment = _FILE_ORDER if thread.native else candidate.created_at
        return (moment, candidate.position)

    # A parent in this file or imported before, else none (and counted).
    parents: dict[str, str | None] = {}
    for comment_id, candidate in candidates.items():
        wanted = candidate.comment.parent_id
        found = wanted != comment_id and (wanted in candidates or wanted in imported)
        parents[comment_id] = wanted if found else None
    missing = {i for i, c in candidates.items() if c.comment.parent_id and not parents[i]}
    missing |= _break_cycles(parents, order)
    kept = _kept(candidates, parents, skipped)
    index = _places(kept, parents, order)

    users = _Users(source, thread.users)
    comments = tuple(
        _imported(candidates[i], parents[i], index, imported, users)
        for i in sorted(index, key=index.__getitem__)
    )
    dates = [candidates[i].created_at for i in index]
    planned = ImportedThread(
        source=source,
        key=thread.key,
        title=thread.title or thread.key,
        url=thread.url,
        created_at=thread.created_at or min(dates, default=None) or datetime.now(UTC),
        locked=thread.locked,
        users=tuple(users.used.values()),
        comments=comments,
    )
    return Plan(planned, skipped, len(missing & kept), already)


class _Users:
    """The users an import names, each once: authors, and likers and moderators if known."""

    def __init__(self, source: str, listed: list[NewUser]) -> None:
        self.source = source
        self.listed = {user.sub: user for user in listed}
        self.used: dict[str, NewUser] = {}

    def author(self, user: NewUser | None) -> str:
        user = user or guest(self.source, None)
        self.used.setdefault(user.sub, user)
        return user.sub

    def listed_user(self, sub: str | None) -> str | None:
        if sub is None or sub not in self.listed:
            return None
        self.used.setdefault(sub, self.listed[sub])
        return sub


def _imported(
    candidate: _Candidate,
    parent: str | None,
    index: dict[str, int],
    imported: Mapping[str, int],
    users: _Users,
) -> ImportedComment:
    comment = candidate.comment
    placeholder = candidate.hidden is not None or comment.state is CommentState.DELETED
    body = "" if placeholder else comment.body
    body_html = render_html(body)
    likers = (users.listed_user(sub) for sub in comment.liked_by)
    return ImportedComment(
        source_id=comment.id,
        author_sub=None if placeholder else users.author(comment.author),
        body=body,
        body_html=body_html,
        body_text=render_text(body_html),
        created_at=candidate.created_at,
        state=CommentState.DELETED if placeholder else comment.state,
        edited_at=comment.edited_at,
        parent_id=imported[parent] if parent is not None and parent not in index else None,
        parent_index=index.get(parent) if parent is not None else None,
        like_count=0 if candidate.hidden else comment.like_count,
        liked_by=tuple(sub for sub in likers if sub is not None),
        revisions=() if placeholder else comment.revisions,
        removed_reason=comment.removed_reason,
        moderated_by=users.listed_user(comment.moderated_by),
    )
