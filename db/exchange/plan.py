"""One thread from a source made into one import: which comments go in, under which parent,
in which order. No I/O: every messy case of every format is decided here, the same way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from db.exchange.source import ANONYMOUS, guest
from db.render import render_html, render_text
from db.rows import CommentState, ImportedComment, ImportedThread, NewUser, Revision
from db.rules import MAX_KEY, MAX_NAME, MAX_REASON, MAX_TITLE, clean_text, line, web_url

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from db.exchange.source import SourceComment, SourceThread
    from db.rows import Identity

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
    body: str  # as clean as the API would take it
    revisions: tuple[Revision, ...]  # their bodies as clean
    hidden: str | None  # why it would be a placeholder: kept only above a visible reply


def _hidden(comment: SourceComment, body: str) -> str | None:
    if comment.hidden:
        return comment.hidden
    if comment.state is CommentState.VISIBLE and not body:
        return "empty body"
    return None


def _placeholder(comment: SourceComment, hidden: str | None) -> bool:
    """Whether it goes in without author and body, if it goes in at all."""
    return hidden is not None or comment.state is CommentState.DELETED


def _readable_id(source_id: str) -> bool:
    return len(source_id) <= MAX_KEY and source_id.isprintable()


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
    thread: SourceThread, imported: Mapping[str, int], skipped: Counter[str], max_body_length: int
) -> tuple[dict[str, _Candidate], int]:
    """The comments that may go in, by id; and how many an earlier run imported. A body
    longer than the API takes is skipped: cut, it would say what its author did not."""
    candidates: dict[str, _Candidate] = {}
    seen: set[str] = set()
    already = 0
    for position, comment in enumerate(thread.comments):
        first_time = comment.id not in seen
        seen.add(comment.id)
        if not first_time:
            skipped["duplicate id"] += 1
            continue
        if comment.id in imported:
            already += 1
            continue
        if not _readable_id(comment.id):
            skipped["unreadable id"] += 1
            continue
        if comment.created_at is None:
            skipped["unreadable date"] += 1
            continue
        # Cleaned only now: a run that adds what is new to a dump skips most comments above.
        body = clean_text(comment.body)
        hidden = _hidden(comment, body)
        revisions = tuple(
            Revision(clean_text(r.body), r.written_at, r.replaced_at) for r in comment.revisions
        )
        if not _placeholder(comment, hidden) and any(
            len(text) > max_body_length for text in (body, *(r.body for r in revisions))
        ):
            skipped[f"body longer than {max_body_length} characters"] += 1
        else:
            candidates[comment.id] = _Candidate(
                position, comment, comment.created_at, body, revisions, hidden
            )
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


def plan_thread(
    thread: SourceThread, source: str, imported: Mapping[str, int], max_body_length: int
) -> Plan:
    """`imported`: ids of this thread's comments that an earlier run brought in, by source id.
    The thread's key is checked before (its imported ids are read by it)."""
    skipped: Counter[str] = Counter(thread.skipped)
    candidates, already = _candidates(thread, imported, skipped, max_body_length)

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

    users = _Users(source)
    comments = tuple(
        _imported(candidates[i], parents[i], index, imported, users)
        for i in sorted(index, key=index.__getitem__)
    )
    dates = [candidates[i].created_at for i in index]
    planned = ImportedThread(
        source=source,
        key=thread.key,
        title=line(thread.title, MAX_TITLE) or thread.key,
        url=thread.url if thread.url and web_url(thread.url) else None,
        created_at=thread.created_at or min(dates, default=None) or datetime.now(UTC),
        locked=thread.locked,
        users=tuple(users.used.values()),
        comments=comments,
    )
    return Plan(planned, skipped, len(missing & kept), already)


class _Users:
    """The users an import names, each once, as the first mention has them: authors, likers
    and moderators. Names and avatars as a token may carry them; no role."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.used: dict[Identity, NewUser] = {}

    def add(self, user: NewUser | None) -> Identity:
        user = user or guest(self.source, None)
        if user.identity not in self.used:
            avatar = user.avatar_url if user.avatar_url and web_url(user.avatar_url) else None
            name = line(user.name, MAX_NAME) or ANONYMOUS
            self.used[user.identity] = NewUser(user.origin, user.sub, name, avatar)
        return user.identity


def _imported(
    candidate: _Candidate,
    parent: str | None,
    index: dict[str, int],
    imported: Mapping[str, int],
    users: _Users,
) -> ImportedComment:
    comment = candidate.comment
    placeholder = _placeholder(comment, candidate.hidden)
    body = "" if placeholder else candidate.body
    body_html = render_html(body)
    # Each like that is listed is counted: its liker can take it back.
    likers = () if candidate.hidden else tuple(dict.fromkeys(map(users.add, comment.liked_by)))
    reason = clean_text(comment.removed_reason or "")[:MAX_REASON].strip()
    return ImportedComment(
        source_id=comment.id,
        author=None if placeholder else users.add(comment.author),
        body=body,
        body_html=body_html,
        body_text=render_text(body_html),
        created_at=candidate.created_at,
        state=CommentState.DELETED if placeholder else comment.state,
        edited_at=comment.edited_at,
        parent_id=imported[parent] if parent is not None and parent not in index else None,
        parent_index=index.get(parent) if parent is not None else None,
        like_count=0 if candidate.hidden else max(comment.like_count, len(likers)),
        liked_by=likers,
        revisions=() if placeholder else candidate.revisions,
        removed_reason=reason or None,
        moderated_by=users.add(comment.moderated_by) if comment.moderated_by else None,
    )
