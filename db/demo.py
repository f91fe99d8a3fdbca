"""The demo thread: a real comment section, checked in as `demo_thread.json`."""

from __future__ import annotations

import json
import re
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from db.render import render_html, render_text
from db.rows import NewComment
from db.storage import Conflict

if TYPE_CHECKING:
    from db.storage import Storage

DEMO_KEY = "demo"


def fixture() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("demo_thread.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def demo_sub(name: str) -> str:
    """A stable host-site id for a demo author."""
    return "demo:" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


async def load_demo(storage: Storage) -> bool:
    """Load the demo thread into an empty database; report whether it did."""
    if await storage.thread_total():
        return False
    data = fixture()
    meta = data["thread"]
    try:
        thread = await storage.create_thread(
            meta["key"], meta["title"], meta["url"], datetime.fromisoformat(meta["createdAt"])
        )
    except Conflict:
        return False  # another process, starting beside this one, is loading it

    authors: dict[str, int] = {}
    for item in data["comments"]:
        if item["author"] not in authors:
            user = await storage.upsert_user(demo_sub(item["author"]), item["author"], None)
            authors[item["author"]] = user.id
    comments = []
    for item in data["comments"]:
        body_html = render_html(item["body"])
        comments.append(
            NewComment(
                author_id=authors[item["author"]],
                body=item["body"],
                body_html=body_html,
                body_text=render_text(body_html),
                created_at=datetime.fromisoformat(item["createdAt"]),
                parent_index=item["parent"],
                like_count=item["likes"],
            )
        )
    await storage.insert_comments(thread.id, comments)
    return True
