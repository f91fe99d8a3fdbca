"""Generated threads of any size and shape, for tests and the bench."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from db.render import render_html, render_text
from db.rows import NewComment

if TYPE_CHECKING:
    from collections.abc import Sequence

    from db.rows import ThreadRow
    from db.storage import Storage

_WORDS = [
    "psoas", "breath", "hip", "spine", "calm", "tension", "release", "yoga", "muscle", "nervous",
    "system", "stretch", "posture", "practice", "body", "balance", "rest", "pose", "gentle",
]  # fmt: skip


def tree_size(top_level: int, fanout: Sequence[int]) -> int:
    size, level = top_level, top_level
    for width in fanout:
        level *= width
        size += level
    return size


async def generate_thread(
    storage: Storage,
    key: str,
    top_level: int,
    fanout: Sequence[int] = (),
    *,
    authors: int = 50,
    seed: int = 1,
) -> ThreadRow:
    """A thread of `top_level` comments, each level below having `fanout[i]` replies per comment.

    Comments are inserted depth-first, each a minute after the one before.
    """
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    thread = await storage.create_thread(key, f"Generated thread {key}", None, start)
    users = [
        (await storage.upsert_user(f"gen:{n}", f"Reader {n}", None)).id for n in range(authors)
    ]
    comments: list[NewComment] = []

    def add(parent_index: int | None, depth: int) -> None:
        body = " ".join(rng.choices(_WORDS, k=rng.randint(5, 40))).capitalize() + "."
        body_html = render_html(body)
        comments.append(
            NewComment(
                author_id=rng.choice(users),
                body=body,
                body_html=body_html,
                body_text=render_text(body_html),
                created_at=start + timedelta(minutes=len(comments) + 1),
                parent_index=parent_index,
                like_count=rng.randint(0, 30),
            )
        )
        index = len(comments) - 1
        if depth < len(fanout):
            for _ in range(fanout[depth]):
                add(index, depth + 1)

    for _ in range(top_level):
        add(None, 0)
    await storage.insert_comments(thread.id, comments)
    refreshed = (await storage.threads_by_ids([thread.id]))[0]
    assert refreshed is not None
    return refreshed
