"""The Mutation root: expected refusals come back in `errors`, beside a null result."""

from __future__ import annotations

import enum

import strawberry

from db.rows import CommentRow, CommentState, ThreadRow
from resolvers import mutations
from schema.types import Comment, Info, Thread


@strawberry.enum
class UserErrorCode(enum.Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    THREAD_LOCKED = "THREAD_LOCKED"
    EDIT_WINDOW_CLOSED = "EDIT_WINDOW_CLOSED"
    RATE_LIMITED = "RATE_LIMITED"


@strawberry.type(description="Why a mutation was refused; `field` names the input at fault.")
class UserError:
    code: UserErrorCode
    message: str
    field: str | None
    retry_after: float | None = strawberry.field(
        default=None, description="Seconds to wait before trying again; set for RATE_LIMITED."
    )


@strawberry.type
class CommentPayload:
    comment: Comment | None
    errors: list[UserError]


@strawberry.type
class ThreadPayload:
    thread: Thread | None
    errors: list[UserError]


@strawberry.input
class AddCommentInput:
    thread_id: strawberry.ID | None = None
    thread_key: str | None = None
    thread_title: str | None = None
    parent_id: strawberry.ID | None = None
    body: str
    thread_url: str | None = strawberry.field(
        default=None,
        description="The page's address, kept by a thread this comment opens (`threadKey`).",
    )


@strawberry.input
class EditCommentInput:
    comment_id: strawberry.ID
    body: str


@strawberry.input
class CommentIdInput:
    comment_id: strawberry.ID


@strawberry.input
class RemoveCommentInput:
    comment_id: strawberry.ID
    reason: str | None = None


@strawberry.input
class LockThreadInput:
    thread_id: strawberry.ID
    locked: bool


def _error(refusal: mutations.Refusal) -> UserError:
    return UserError(
        code=UserErrorCode(refusal.code),
        message=refusal.message,
        field=refusal.field,
        retry_after=refusal.retry_after,
    )


def thread_input(input: AddCommentInput) -> str:
    """The input that names the thread a new comment goes to: a reply's is its parent's."""
    if input.thread_id is not None:
        return "threadId"
    return "threadKey" if input.thread_key is not None else "parentId"


def comment_payload(info: Info, outcome: CommentRow | mutations.Refusal) -> CommentPayload:
    if isinstance(outcome, mutations.Refusal):
        return CommentPayload(comment=None, errors=[_error(outcome)])
    return CommentPayload(comment=Comment.from_row(outcome, info.context), errors=[])


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description=(
            "A reply when `parentId` is given; a new `threadKey` opens a thread, where"
            " THREADQL_THREAD_CREATION lets this user open it."
        )
    )
    async def add_comment(self, info: Info, input: AddCommentInput) -> CommentPayload:
        outcome = await mutations.attempt(
            mutations.add_comment(
                info.context,
                thread_id=input.thread_id,
                thread_key=input.thread_key,
                thread_title=input.thread_title,
                parent_id=input.parent_id,
                body=input.body,
                thread_url=input.thread_url,
            ),
            thread_field=thread_input(input),
        )
        return comment_payload(info, outcome)

    @strawberry.mutation(description="The author only, within the edit window.")
    async def edit_comment(self, info: Info, input: EditCommentInput) -> CommentPayload:
        edit = mutations.edit_comment(info.context, comment_id=input.comment_id, body=input.body)
        return comment_payload(info, await mutations.attempt(edit))

    @strawberry.mutation(description="Author or moderator; the placeholder keeps its replies.")
    async def delete_comment(self, info: Info, input: CommentIdInput) -> CommentPayload:
        delete = mutations.hide_comment(
            info.context, comment_id=input.comment_id, state=CommentState.DELETED
        )
        return comment_payload(info, await mutations.attempt(delete))

    @strawberry.mutation(description="Idempotent: one like per user.")
    async def like_comment(self, info: Info, input: CommentIdInput) -> CommentPayload:
        like = mutations.set_like(info.context, comment_id=input.comment_id, liked=True)
        return comment_payload(info, await mutations.attempt(like))

    @strawberry.mutation(description="Idempotent.")
    async def unlike_comment(self, info: Info, input: CommentIdInput) -> CommentPayload:
        unlike = mutations.set_like(info.context, comment_id=input.comment_id, liked=False)
        return comment_payload(info, await mutations.attempt(unlike))

    @strawberry.mutation(description="Moderators only; the reason is kept.")
    async def remove_comment(self, info: Info, input: RemoveCommentInput) -> CommentPayload:
        remove = mutations.hide_comment(
            info.context,
            comment_id=input.comment_id,
            state=CommentState.REMOVED,
            reason=input.reason,
        )
        return comment_payload(info, await mutations.attempt(remove))

    @strawberry.mutation(
        description="Moderators only; a locked thread is read-only for all but moderators."
    )
    async def lock_thread(self, info: Info, input: LockThreadInput) -> ThreadPayload:
        lock = mutations.lock_thread(info.context, thread_id=input.thread_id, locked=input.locked)
        outcome: ThreadRow | mutations.Refusal = await mutations.attempt(lock, "threadId")
        if isinstance(outcome, mutations.Refusal):
            return ThreadPayload(thread=None, errors=[_error(outcome)])
        return ThreadPayload(thread=Thread.from_row(outcome), errors=[])
