"""What each mutation checks and writes; a refusal comes back as data, never half-written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypeVar

from db import policy
from db.render import render_html, render_text
from db.rows import CommentRow, CommentState, NewComment, ThreadRef, ThreadRow
from db.storage import Forbidden, InvalidInput, Reason, WriteRefused
from resolvers import refusals, thread_creation, validation
from server.broker import Event, EventKind
from server.ratelimit import retry_after

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from db.rows import Actor
    from resolvers.context import Context

R = TypeVar("R", CommentRow, ThreadRow)
Bucket = Literal["comments", "likes"]  # addComment and editComment; likes and unlikes


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str
    field: str | None
    retry_after: float | None = None  # seconds, when trying again later will do


class RateLimited(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


async def attempt(mutation: Awaitable[R], thread_field: str = "commentId") -> R | Refusal:
    """Run a mutation; what the data refuses becomes a Refusal for the payload's `errors`.
    `thread_field` is the input that named the thread the mutation writes to."""
    try:
        return await mutation
    except RateLimited as limited:
        return Refusal("RATE_LIMITED", limited.message, None, limited.retry_after)
    except WriteRefused as refused:
        code = refusals.CODES[refused.reason]
        return Refusal(code, refused.message, refusals.field(refused, thread_field))


async def _limited(context: Context, bucket: Bucket) -> Actor:
    """The writer, once a token of the bucket is theirs; checked before anything is read
    or written, so that a refusal costs the server next to nothing."""
    actor = context.actor()
    settings = context.settings
    if bucket == "comments":
        rate, burst = settings.comments_per_minute, settings.comment_burst
    else:
        rate, burst = settings.likes_per_minute, settings.like_burst
    wait = await context.limiter.take(bucket, context.rate_key(), rate, burst)
    if wait > 0:
        seconds = retry_after(wait)
        raise RateLimited(
            f"too many {bucket} in a short time: try again in {seconds:g} s "
            f"(up to {burst} in a row, then {rate} a minute)",
            seconds,
        )
    return actor


def _rendered(context: Context, source: str) -> tuple[str, str, str]:
    body = validation.body(source, context.settings.max_body_length)
    body_html = render_html(body)
    return body, body_html, render_text(body_html)


async def _published(
    context: Context, kind: EventKind, comment: CommentRow, ancestor_ids: tuple[int, ...] = ()
) -> CommentRow:
    """Announce a committed write to the thread's subscribers; a new comment names the
    comments above it, for those who follow a subtree."""
    event = Event(kind, comment.thread_id, comment.id, ancestor_ids)
    await context.broker.publish(event)
    return comment


async def add_comment(
    context: Context,
    *,
    thread_id: str | None,
    thread_key: str | None,
    thread_title: str | None,
    parent_id: str | None,
    body: str,
    thread_url: str | None = None,
) -> CommentRow:
    actor = await _limited(context, "comments")
    source, body_html, body_text = _rendered(context, body)
    parent = validation.comment_key(parent_id, "parentId") if parent_id is not None else None
    if thread_id is not None and thread_key is not None:
        raise InvalidInput("give `threadId` or `threadKey`, not both", Reason.INVALID, "threadKey")
    if thread_id is not None:
        thread = ThreadRef(id=validation.thread_id(thread_id))
    elif thread_key is not None:
        title = thread_title and validation.text(thread_title, "threadTitle", validation.MAX_TITLE)
        key = validation.text(thread_key, "threadKey", validation.MAX_KEY)
        url = validation.url(thread_url, "threadUrl") if thread_url is not None else None
        rule = thread_creation.parse(context.settings.thread_creation, context.settings.env)
        thread = ThreadRef(
            key=key,
            title=title or None,
            url=url,
            creation_refused=rule.refusal(actor.moderator, key, url),
        )
    elif parent is not None:
        thread = ThreadRef(id=parent[0])
    else:
        raise InvalidInput("give `threadId`, `threadKey` or `parentId`", Reason.INVALID, "threadId")
    comment = NewComment(
        author_id=actor.user_id,
        body=source,
        body_html=body_html,
        body_text=body_text,
        created_at=datetime.now(UTC),
        parent_id=parent[1] if parent else None,
    )
    added = await context.storage.add_comment(
        thread,
        comment,
        actor,
        parent_thread_id=parent[0] if parent else None,
        max_depth=context.settings.max_depth or None,
    )
    return await _published(context, EventKind.ADDED, added.comment, added.ancestor_ids)


async def edit_comment(context: Context, *, comment_id: str, body: str) -> CommentRow:
    actor = await _limited(context, "comments")
    key = validation.comment_key(comment_id)
    window = timedelta(seconds=context.settings.edit_window)
    rendered = _rendered(context, body)
    row = await context.storage.edit_comment(key, actor, rendered, datetime.now(UTC), window)
    return await _published(context, EventKind.UPDATED, row)


async def hide_comment(
    context: Context, *, comment_id: str, state: CommentState, reason: str | None = None
) -> CommentRow:
    """Delete (`DELETED`) or remove (`REMOVED`) a comment, leaving a placeholder."""
    actor = context.actor()
    key = validation.comment_key(comment_id)
    if reason is not None:
        reason = validation.text(reason, "reason", validation.MAX_REASON, multiline=True)
    row = await context.storage.hide_comment(key, actor, state, reason)
    return await _published(context, EventKind.UPDATED, row)


async def set_like(context: Context, *, comment_id: str, liked: bool) -> CommentRow:
    actor = await _limited(context, "likes")
    row = await context.storage.set_like(validation.comment_key(comment_id), actor, liked)
    return await _published(context, EventKind.UPDATED, row)


async def lock_thread(context: Context, *, thread_id: str, locked: bool) -> ThreadRow:
    actor = context.actor()
    key = validation.thread_id(thread_id)
    if not policy.can_moderate(actor):
        raise Forbidden("only a moderator can lock a thread", Reason.NOT_MODERATOR, "threadId")
    return await context.storage.lock_thread(key, locked)
