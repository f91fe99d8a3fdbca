"""Disqus's XML export: `<thread>` elements first, then every `<post>` of every thread.

Posts of one thread may be anywhere in the file, so it is read twice: once for the threads,
the posts' ids and how many posts each thread has, then for the posts, each thread handed on
as soon as its last post is read. Neither pass holds more of the document than one element.

Objects are named by their `dsq:id` attribute; a reference without one (`<thread>1</thread>`,
`<parent>2</parent>`, as in Disqus's own example) names the object whose `<id>` it gives.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from db.exchange.markup import html_to_markdown
from db.exchange.source import SourceComment, SourceThread, account, guest, parse_iso
from db.exchange.xmlstream import attribute, child, local, records, text

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from xml.etree.ElementTree import Element

    from db.exchange.source import Deadline

SOURCE = "disqus"


@dataclass(slots=True)
class _Thread:
    key: str
    title: str
    url: str | None
    created: str
    closed: bool
    deleted: bool


def _true(element: Element, name: str) -> bool:
    return text(element, name).lower() == "true"


def _thread(element: Element) -> _Thread:
    link = text(element, "link")
    key = text(element, "id") or link  # the page's disqus_identifier, else its address
    return _Thread(
        key=key,
        title=text(element, "title") or key,
        url=link or None,
        created=text(element, "createdAt"),
        closed=_true(element, "isClosed"),
        deleted=_true(element, "isDeleted"),
    )


def _ref(element: Element | None) -> str | None:
    """A reference to a thread or post: its dsq:id, else `id:` and the `<id>` it gives."""
    if element is None:
        return None
    given = text(element)
    return attribute(element, "id") or (f"id:{given}" if given else None)


def _names(element: Element) -> list[str]:
    """Every name a reference may use for this thread or post."""
    own = text(element, "id")
    return [n for n in (attribute(element, "id"), f"id:{own}" if own else None) if n]


def _post(element: Element, names: dict[str, str]) -> SourceComment | None:
    post_id = next(iter(_names(element)), None)
    if post_id is None:
        return None
    parent = _ref(child(element, "parent"))
    author = child(element, "author")
    username = text(author, "username")
    name = text(author, "name")
    anonymous = author is None or _true(author, "isAnonymous")
    hidden = "spam" if _true(element, "isSpam") else None
    if _true(element, "isDeleted"):
        hidden = "deleted"
    return SourceComment(
        id=post_id,
        parent_id=names.get(parent, parent) if parent else None,
        author=account(SOURCE, username, name)
        if username and not anonymous
        else guest(SOURCE, name),
        body=html_to_markdown(text(element, "message")),
        created_at=parse_iso(text(element, "createdAt")),
        hidden=hidden,
    )


def read(path: Path, skipped: Counter[str], deadline: Deadline) -> Iterator[SourceThread]:
    threads: dict[str, _Thread] = {}
    aliases: dict[str, str] = {}  # any name of a thread -> its first name
    posts: dict[str, str] = {}  # any name of a post -> its first name
    references: Counter[str | None] = Counter()
    for element in records(path, 1):
        deadline.check()
        kind, names = local(element.tag), _names(element)
        if kind == "thread" and names:
            threads[names[0]] = _thread(element)
            aliases.update((name, names[0]) for name in names)
        elif kind == "post":
            posts.update((name, names[0]) for name in names)
            references[_ref(child(element, "thread"))] += 1
    expected: Counter[str] = Counter()
    for reference, count in references.items():
        expected[aliases.get(reference or "", "")] += count

    pending: dict[str, list[SourceComment]] = defaultdict(list)
    seen: Counter[str] = Counter()
    for element in records(path, 1):
        deadline.check()
        if local(element.tag) != "post":
            continue
        thread_id = aliases.get(_ref(child(element, "thread")) or "", "")
        if thread_id not in threads:
            skipped["post of a thread not in the file"] += 1
            continue
        post = _post(element, posts)
        if post is None:
            skipped["post without an id"] += 1
        else:
            pending[thread_id].append(post)
        seen[thread_id] += 1
        if seen[thread_id] == expected[thread_id]:
            yield _source_thread(threads[thread_id], pending.pop(thread_id, []))
    for thread_id, left in pending.items():  # the file changed between the passes
        yield _source_thread(threads[thread_id], left)


def _source_thread(thread: _Thread, posts: list[SourceComment]) -> SourceThread:
    return SourceThread(
        key=thread.key,
        title=thread.title,
        url=thread.url,
        created_at=parse_iso(thread.created),
        comments=posts,
        locked=thread.closed,
        skip="deleted at Disqus" if thread.deleted else None,
    )
