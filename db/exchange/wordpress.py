"""WordPress's export (WXR): one `<item>` per post, its `<wp:comment>` elements inside it.

Read in one pass, one item at a time. Items without comments (menus, most attachments) are
not threads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from db.exchange.markup import html_to_markdown
from db.exchange.source import SourceComment, SourceThread, account, guest, utc
from db.exchange.xmlstream import children, local, records, text

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterator
    from pathlib import Path
    from xml.etree.ElementTree import Element

    from db.exchange.source import Deadline

SOURCE = "wordpress"
_PUBLIC = {"publish", "inherit"}  # published posts, and attachments of published posts
_APPROVED = {"1": None, "0": "not approved", "spam": "spam", "trash": "deleted"}
_COMMENT_TYPES = {"", "comment"}  # not pingbacks, trackbacks or plugins' own kinds


def _time(value: str) -> datetime | None:
    """WordPress's "2019-05-01 14:03:00"; its zero date "0000-00-00 00:00:00" is no date."""
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def _local(moment: datetime, offset: timedelta | None) -> datetime | None:
    """A local time in UTC, by the site's offset from its post."""
    try:
        return utc(moment - (offset or timedelta()))
    except OverflowError:
        return None


def _comment(element: Element, offset: timedelta | None) -> SourceComment:
    gmt, local_time = _time(text(element, "comment_date_gmt")), _time(text(element, "comment_date"))
    if gmt is not None:
        created = utc(gmt)
    elif local_time is not None:
        created = _local(local_time, offset)
    else:
        created = None
    name, user_id = text(element, "comment_author"), text(element, "comment_user_id")
    approved = text(element, "comment_approved")
    parent = text(element, "comment_parent")
    return SourceComment(
        id=text(element, "comment_id"),
        parent_id=parent if parent not in ("", "0") else None,
        author=account(SOURCE, user_id, name) if user_id not in ("", "0") else guest(SOURCE, name),
        body=html_to_markdown(text(element, "comment_content"), newlines=True),
        created_at=created,
        hidden=_APPROVED.get(
            approved, "deleted" if approved.endswith("trashed") else "not approved"
        ),
    )


def _item(item: Element) -> SourceThread:
    post_date, post_gmt = _time(text(item, "post_date")), _time(text(item, "post_date_gmt"))
    offset = post_date - post_gmt if post_date and post_gmt else None
    link = text(item, "link")
    key = link or text(item, "guid") or f"wordpress:{text(item, 'post_id')}"
    thread = SourceThread(
        key=key,
        title=text(item, "title") or key,
        url=link or None,
        created_at=utc(post_gmt) if post_gmt else None,
        comments=[],
        locked=text(item, "comment_status") == "closed",
    )
    if text(item, "status") not in _PUBLIC:
        thread.skip = "post not published"
    for element in children(item, "comment"):
        kind = text(element, "comment_type")
        if kind in _COMMENT_TYPES:
            thread.comments.append(_comment(element, offset))
        else:
            thread.skipped[kind] += 1
    return thread


def read(path: Path, skipped: Counter[str], deadline: Deadline) -> Iterator[SourceThread]:
    for element in records(path, 2):  # rss > channel > item
        deadline.check()
        if local(element.tag) == "item" and children(element, "comment"):
            yield _item(element)
