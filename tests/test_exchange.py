"""`threadql import` and `threadql export`: every format's messy cases, re-runs, round trips."""

from __future__ import annotations

import io
import json
import sqlite3
from collections import Counter
from contextlib import AsyncExitStack, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from db import open_storage
from db.demo import load_demo
from db.exchange import (
    ExchangeError,
    Limits,
    Summary,
    TimedOut,
    disqus,
    import_file,
    jsonstream,
    native,
)
from db.exchange.markup import html_to_markdown
from db.exchange.plan import plan_thread
from db.exchange.source import Deadline, SourceComment, SourceThread, guest
from db.render import render_html, render_text
from db.rows import Actor, CommentOrder, CommentState, NewComment, PageRequest, ThreadRef
from db.sql import SQLStorage
from resolvers import ids
from server import cli
from server.auth import mint
from tests.conftest import new_comment, postgres_schema
from tests.services import SECRET
from tests.test_cli import run
from tests.test_counts import recount, stored_comments
from tests.test_mutations import MUTATIONS, running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from db.rows import CommentRow
    from db.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures"
DISQUS = FIXTURES / "disqus.xml"
WORDPRESS = FIXTURES / "wordpress.xml"
PSOAS, HIPS = "post-psoas", "https://blog.example.com/2024/04/hips/"
HELLO, ABOUT = "https://wp.example.com/2023/05/hello-hips/", "https://wp.example.com/about/"
BREATHING, UNTITLED = "/posts/breathing/", "/posts/untitled/"


def isso_database(folder: Path) -> Path:
    """Isso's database file, built from the script Isso's own schema is written in."""
    path = folder / "isso.db"
    if not path.exists():
        with sqlite3.connect(path) as connection:
            connection.executescript((FIXTURES / "isso.sql").read_text("utf-8"))
        connection.close()
    return path


def source_file(format_name: str, folder: Path) -> Path:
    return {"disqus": DISQUS, "wordpress": WORDPRESS}.get(format_name) or isso_database(folder)


@pytest.fixture
async def empty_storage(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Storage]:
    """A second fresh, migrated database on the backend of `storage`."""
    async with AsyncExitStack() as stack:
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path}/empty.db"
        else:
            database = request.getfixturevalue("postgres_database")
            url = await stack.enter_async_context(postgres_schema(database))
        store = open_storage(url)
        await store.open()
        stack.push_async_callback(store.close)
        await store.migrate()
        yield store


async def dump(storage: Storage, key: str | None = None) -> bytes:
    out = io.BytesIO()
    await native.export(storage, out, key)
    return out.getvalue()


async def by_source(storage: Storage, key: str, source: str) -> dict[str, CommentRow]:
    """A thread's imported comments by their ids at the source."""
    [thread] = await storage.threads_by_keys([key])
    assert thread is not None
    found = await storage.thread_dump(thread.id)
    assert found is not None
    rows = {comment.id: comment for comment in found.comments}
    return {
        source_id: rows[i] for source_id, i in (await storage.imported_ids(key, source)).items()
    }


async def assert_exact(storage: Storage) -> None:
    """Every count of every thread equals a recount from the rows; every body is rendered.

    Like counts are left out: imports bring counts without the likes behind them."""
    assert isinstance(storage, SQLStorage)
    threads = await storage._read("SELECT id, comment_count, top_level_count FROM threads")
    for thread_id, comment_count, top_level_count in threads:
        comments = await stored_comments(storage, thread_id)
        counts, listed = recount(comments, [])
        assert {i: c.counts[1:] for i, c in comments.items()} == {
            i: c[1:] for i, c in counts.items()
        }
        visible = sum(c.state == "VISIBLE" for c in comments.values())
        top_level = sum(listed[i] for i, c in comments.items() if c.parent_id is None)
        assert (comment_count, top_level_count) == (visible, top_level), thread_id
        found = await storage.thread_dump(thread_id)
        assert found is not None
        for comment in found.comments:
            assert comment.body_html == render_html(comment.body)
            assert comment.body_text == render_text(comment.body_html)


async def top_level(storage: Storage, thread_id: int) -> list[int]:
    [page] = await storage.comment_pages(
        [PageRequest(thread_id, None, CommentOrder.OLDEST, None, 100)]
    )
    return [comment.id for comment in page]


async def thread(storage: Storage, key: str) -> Any:
    [found] = await storage.threads_by_keys([key])
    assert found is not None
    return found


# -- Disqus ------------------------------------------------------------------------------------


async def test_disqus_export_with_every_messy_case(storage: Storage) -> None:
    summary = await import_file(storage, "disqus", DISQUS)

    assert (summary.threads_created, summary.comments, summary.users) == (2, 10, 8)
    assert summary.orphans == 1  # 2004 answers a post that is not in the file
    assert summary.skipped == Counter(
        {
            "duplicate id": 1,  # the second 2002
            "unreadable date": 1,  # 2011
            "spam, no replies": 1,  # 2008
            "deleted, no replies": 1,  # 2009
            "in a skipped thread": 1,  # 4001, on the thread deleted at Disqus
            "post of a thread not in the file": 1,  # 5001
        }
    )
    assert summary.skipped_threads == Counter({"deleted at Disqus": 1})
    [draft, quiet] = await storage.threads_by_keys(["old-draft", "quiet-post"])
    assert (draft, quiet) == (None, None), "deleted threads and threads without posts stay out"

    psoas = await thread(storage, PSOAS)
    assert (psoas.title, psoas.url) == (
        "The psoas, explained",
        "https://blog.example.com/2024/03/psoas/",
    )
    assert psoas.created_at == datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert (psoas.comment_count, psoas.top_level_count, psoas.locked) == (8, 6, False)
    hips = await thread(storage, HIPS)  # no disqus_identifier: the page's address is the key
    assert (hips.title, hips.locked, hips.comment_count) == ("Open hips & happy knees", True, 1)

    c = await by_source(storage, PSOAS, "disqus")
    assert set(c) == {"2001", "2002", "2003", "2004", "2005", "2006", "2007", "2010", "2013"}
    # Timezones: 07:15-02:00 and 12:30+02:00 are 09:15 and 10:30 UTC.
    assert c["2005"].created_at == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)
    assert c["2003"].created_at == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    # A parent later in the file: written first, and the reply hangs under it.
    assert (c["2003"].parent_id, c["2003"].depth) == (c["2005"].id, 1)
    assert c["2005"].id < c["2003"].id
    # A missing parent: top level.
    assert (c["2004"].parent_id, c["2004"].depth) == (None, 0)
    # Deleted with a reply: a placeholder without author or body, the reply beneath it.
    assert (c["2006"].state, c["2006"].author, c["2006"].body) == (CommentState.DELETED, None, "")
    assert c["2007"].parent_id == c["2006"].id
    assert c["2006"].descendant_count == 1
    # Duplicates: the first wins.
    assert c["2002"].body == "Thanks Jane & welcome!\nSecond line."
    assert c["2002"].parent_id == c["2001"].id
    # Authors: accounts by username, guests by name, nobody as Anonymous.
    assert c["2001"].author is not None
    assert c["2003"].author is not None
    assert (c["2001"].author.identity, c["2001"].author.name) == (
        ("disqus", "user:janedoe"),
        "Jane Doe",
    )
    assert c["2003"].author.identity == ("disqus", "guest:bob guest")
    assert c["2010"].author is not None
    assert (c["2010"].author.identity, c["2010"].author.name) == (
        ("disqus", "anonymous"),
        "Anonymous",
    )
    [knees] = (await by_source(storage, HIPS, "disqus")).values()
    assert knees.author == c["2001"].author, "one user across threads, named as first seen"
    # HTML bodies become Markdown; their HTML is db.render's.
    assert c["2001"].body == (
        "Great piece! See [this study](https://example.org/psoas_study?id=4).\n\n"
        "Also **stretch** daily."
    )
    assert '<a href="https://example.org/psoas_study?id=4"' in c["2001"].body_html
    assert c["2003"].body == "Agreed, \\*especially\\* the part about breathing."
    assert c["2003"].body_html == "<p>Agreed, *especially* the part about breathing.</p>"
    hostile = c["2013"].body_html
    assert "Nice" in hostile
    assert not any(bad in hostile for bad in ("script", "javascript", "onerror", "alert"))

    order = ["2005", "2001", "2004", "2006", "2010", "2013"]
    assert await top_level(storage, psoas.id) == [c[i].id for i in order]
    await assert_exact(storage)


async def test_a_later_export_adds_only_what_is_new(storage: Storage, tmp_path: Path) -> None:
    """A new reply under a placeholder that had left the listings brings it back, exactly."""
    await import_file(storage, "disqus", DISQUS)
    c = await by_source(storage, PSOAS, "disqus")
    moderator = await storage.upsert_user("host:mod", "Mod", None, "moderator")
    await storage.hide_comment(
        (c["2007"].thread_id, c["2007"].id), Actor(moderator.id, True), CommentState.DELETED
    )
    assert (await thread(storage, PSOAS)).top_level_count == 5, "Dan's placeholder left"

    later = tmp_path / "later.xml"
    new_post = """<post dsq:id="2014"><id /><message><![CDATA[<p>Late to the party.</p>]]>
      </message><createdAt>2024-03-02T09:00:00Z</createdAt><isDeleted>false</isDeleted>
      <isSpam>false</isSpam><author><name>Erin</name><isAnonymous>true</isAnonymous></author>
      <thread dsq:id="7716001" /><parent dsq:id="2006" /></post>
    </disqus>"""
    later.write_text(DISQUS.read_text("utf-8").replace("</disqus>", new_post), "utf-8")
    summary = await import_file(storage, "disqus", later)

    assert (summary.comments, summary.already, summary.users) == (1, 10, 0)
    assert (summary.threads_extended, summary.threads_unchanged) == (1, 1)
    c = await by_source(storage, PSOAS, "disqus")
    assert c["2014"].parent_id == c["2006"].id
    psoas = await thread(storage, PSOAS)
    assert (psoas.comment_count, psoas.top_level_count) == (8, 6)
    await assert_exact(storage)


async def test_a_reply_under_hidden_comments_brings_them_back_into_the_listings(
    storage: Storage,
) -> None:
    """insert_comments under a stored placeholder that nothing visible kept listed: it comes
    back, and so does each ancestor that was out for the same reason."""
    now = datetime(2024, 1, 1, tzinfo=UTC)
    moderator = Actor((await storage.upsert_user("host:mod", "Mod", None, "moderator")).id, True)
    created = await storage.create_thread("chain", "Chain", None, now)
    [a] = await storage.insert_comments(created.id, [new_comment("a", now)])
    [b] = await storage.insert_comments(created.id, [new_comment("b", now, parent_id=a)])
    [c] = await storage.insert_comments(created.id, [new_comment("c", now, parent_id=b)])
    for hidden, state in (
        (c, CommentState.DELETED),
        (b, CommentState.REMOVED),
        (a, CommentState.DELETED),
    ):
        await storage.hide_comment((created.id, hidden), moderator, state)
    assert await top_level(storage, created.id) == []

    later = now + timedelta(minutes=1)
    await storage.insert_comments(
        created.id, [new_comment("d", later, parent_id=b), new_comment("e", later, parent_id=b)]
    )

    assert await top_level(storage, created.id) == [a]
    chain = await thread(storage, "chain")
    assert (chain.comment_count, chain.top_level_count) == (2, 1)
    await assert_exact(storage)


# -- WordPress ---------------------------------------------------------------------------------


async def test_wordpress_export_with_every_messy_case(storage: Storage) -> None:
    summary = await import_file(storage, "wordpress", WORDPRESS)

    assert (summary.threads_created, summary.comments, summary.users, summary.orphans) == (
        2,
        7,
        6,
        1,
    )
    assert summary.skipped == Counter(
        {
            "pingback": 1,  # 103
            "spam, no replies": 1,  # 104
            "deleted, no replies": 1,  # 107, trashed
            "in a skipped thread": 1,  # 201, on a draft
        }
    )
    assert summary.skipped_threads == Counter({"post not published": 1})
    [draft, attachment] = await storage.threads_by_keys(
        ["https://wp.example.com/?p=20", "https://wp.example.com/2023/05/hello-hips/hips-diagram/"]
    )
    assert draft is None
    assert attachment is None

    hello = await thread(storage, HELLO)
    assert (hello.title, hello.created_at) == ("Hello, hips", datetime(2023, 5, 1, 10, tzinfo=UTC))
    assert (hello.comment_count, hello.top_level_count, hello.locked) == (5, 3, False)
    about = await thread(storage, ABOUT)
    assert (about.locked, about.comment_count) == (True, 1), "comment_status closed locks"

    c = await by_source(storage, HELLO, "wordpress")
    assert set(c) == {"101", "102", "105", "106", "108", "109"}
    # No GMT date: the local date less the offset of the post's own two dates.
    assert c["102"].created_at == datetime(2023, 5, 2, 10, 30, tzinfo=UTC)
    # A reply dated before its parent: the parent is written first all the same.
    assert c["108"].parent_id == c["101"].id
    assert c["108"].created_at < c["101"].created_at
    assert c["101"].id < c["108"].id
    # Unapproved with an approved reply: a placeholder.
    assert (c["105"].state, c["105"].author) == (CommentState.DELETED, None)
    assert c["106"].parent_id == c["105"].id
    assert c["106"].author is not None
    assert c["106"].author.name == "Anonymous"
    assert (c["109"].parent_id, c["109"].depth) == (None, 0)
    # Registered users by id, guests by name.
    assert c["101"].author is not None
    assert c["102"].author is not None
    assert (c["101"].author.identity, c["101"].author.name) == (
        ("wordpress", "user:1"),
        "Alice Admin",
    )
    assert c["102"].author.identity == ("wordpress", "guest:bob")
    # WordPress's line breaks are the author's.
    assert c["101"].body == (
        "Welcome, everyone!\n\nSecond paragraph, with **bold** words\nand a line break."
    )
    assert "<strong>bold</strong> words<br>" in c["101"].body_html
    assert c["102"].body == "Thanks Alice - 5 stars & more."
    [source] = (await by_source(storage, ABOUT, "wordpress")).values()
    assert source.body == "Source: <https://x.example/a_b>"
    assert 'href="https://x.example/a_b"' in source.body_html

    replies = await storage.comment_pages(
        [PageRequest(hello.id, c["101"].id, CommentOrder.OLDEST, None, 10)]
    )
    assert [r.id for r in replies[0]] == [c["108"].id, c["102"].id]
    assert await top_level(storage, hello.id) == [c["101"].id, c["105"].id, c["109"].id]
    await assert_exact(storage)


# -- Isso --------------------------------------------------------------------------------------


async def test_isso_database_with_every_messy_case(storage: Storage, tmp_path: Path) -> None:
    summary = await import_file(storage, "isso", isso_database(tmp_path))

    assert (summary.threads_created, summary.comments, summary.users, summary.orphans) == (
        2,
        6,
        4,
        1,
    )
    assert summary.skipped == Counter({"not approved, no replies": 1})
    breathing = await thread(storage, BREATHING)
    assert (breathing.title, breathing.url) == ("Breathing into the belly", None)
    assert breathing.created_at == datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC)
    assert (breathing.comment_count, breathing.top_level_count) == (4, 3)
    untitled = await thread(storage, UNTITLED)
    assert untitled.title == UNTITLED, "a page without a title is named by its path"

    c = await by_source(storage, BREATHING, "isso")
    assert set(c) == {"1", "2", "3", "4", "6"}
    assert (c["1"].like_count, c["1"].body) == (3, "Lovely post. *Really* helped.")
    assert c["1"].body_html == "<p>Lovely post. <em>Really</em> helped.</p>"
    assert c["2"].edited_at == datetime(2023, 11, 14, 22, 28, 20, 500_000, tzinfo=UTC)
    assert (c["3"].state, c["4"].parent_id) == (CommentState.DELETED, c["3"].id)
    assert c["4"].author is not None
    assert c["4"].author.identity == ("isso", "anonymous")
    assert (c["6"].parent_id, c["6"].depth) == (None, 0)
    [first] = (await by_source(storage, UNTITLED, "isso")).values()
    assert first.author == c["1"].author, "the same name, trimmed, is the same guest"
    await assert_exact(storage)


# -- every format ------------------------------------------------------------------------------


@pytest.mark.parametrize("format_name", ["disqus", "wordpress", "isso"])
async def test_importing_again_adds_nothing(
    storage: Storage, tmp_path: Path, format_name: str
) -> None:
    path = source_file(format_name, tmp_path)
    first = await import_file(storage, format_name, path)
    before = await dump(storage)

    again = await import_file(storage, format_name, path)

    assert (again.comments, again.users, again.threads_created, again.threads_extended) == (
        0,
        0,
        0,
        0,
    )
    assert (again.already, again.threads_unchanged) == (first.comments, first.threads)
    assert await dump(storage) == before


async def test_only_the_thread_with_the_key(storage: Storage) -> None:
    summary = await import_file(storage, "wordpress", WORDPRESS, key=ABOUT)
    assert (summary.threads_created, summary.comments, summary.skipped) == (1, 1, Counter())
    assert await storage.thread_total() == 1


async def test_a_thread_lands_whole_or_not_at_all(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(storage, SQLStorage)
    real = SQLStorage._import_history

    async def failing(self: SQLStorage, thread_id: int, *args: Any) -> None:
        await real(self, thread_id, *args)
        raise RuntimeError("the connection dropped")

    monkeypatch.setattr(SQLStorage, "_import_history", failing)
    with pytest.raises(RuntimeError, match="dropped"):
        await import_file(storage, "disqus", DISQUS)
    for table in ("threads", "comments", "users", "import_sources"):
        [row] = await storage._read(f"SELECT COUNT(*) FROM {table}")
        assert row[0] == 0, table

    monkeypatch.undo()
    summary = await import_file(storage, "disqus", DISQUS)
    assert summary.comments == 10


# -- threadql's own format -----------------------------------------------------------------------


async def write_history(storage: Storage) -> None:
    """What only the API writes: an edit, likes, a removal with its reason, a moderator's
    deletion, a locked thread, a thread without comments."""
    writer = await storage.upsert_user("host:writer", "Writer", "https://img.example/w.png")
    moderator = await storage.upsert_user("host:mod", "Mo Derator", None, "moderator")
    fan = await storage.upsert_user("host:fan", "Fan", None)
    demo = await thread(storage, "demo")
    now = datetime.now(UTC)
    body, html = "First draft", render_html("First draft")
    posted = await storage.add_comment(
        ThreadRef(id=demo.id),
        NewComment(writer.id, body, html, render_text(html), now),
        Actor(writer.id),
    )
    key = (posted.comment.thread_id, posted.comment.id)
    edited = "Second draft, *better*"
    html = render_html(edited)
    await storage.edit_comment(
        key, Actor(writer.id), (edited, html, render_text(html)), now, timedelta(minutes=15)
    )
    await storage.set_like(key, Actor(fan.id), True)
    await storage.set_like(key, Actor(moderator.id, True), True)
    found = await storage.thread_dump(demo.id)
    assert found is not None
    first, second, third = found.comments[0], found.comments[1], found.comments[2]
    await storage.set_like((demo.id, first.id), Actor(fan.id), True)
    await storage.hide_comment(
        (demo.id, second.id), Actor(moderator.id, True), CommentState.REMOVED, "off-topic"
    )
    await storage.hide_comment((demo.id, third.id), Actor(moderator.id, True), CommentState.DELETED)
    await storage.lock_thread(demo.id, True)
    await storage.create_thread("empty", "Nobody here yet", None, datetime(2024, 1, 1, tzinfo=UTC))


async def comment_counts(storage: Storage) -> list[Any]:
    """Each thread's counts and each comment's, in the order they were written."""
    counts: list[Any] = []
    for row in await storage.thread_page(None, 100, oldest_first=True):
        found = await storage.thread_dump(row.id)
        assert found is not None
        counts.append((row.key, row.comment_count, row.top_level_count))
        counts += [
            (
                c.depth,
                c.state,
                c.like_count,
                c.reply_count,
                c.listed_reply_count,
                c.descendant_count,
            )
            for c in found.comments
        ]
    return counts


async def test_export_then_import_into_an_empty_database_gives_the_same_threads(
    storage: Storage, empty_storage: Storage, tmp_path: Path
) -> None:
    assert await load_demo(storage)
    await import_file(storage, "disqus", DISQUS)
    await import_file(storage, "isso", isso_database(tmp_path))
    await write_history(storage)
    exported = await dump(storage)
    document = json.loads(exported)
    assert [t["key"] for t in document["threads"]] == [
        "demo", PSOAS, HIPS, BREATHING, UNTITLED, "empty",
    ]  # fmt: skip
    demo = document["threads"][0]
    assert demo["locked"] is True
    assert {c["state"] for c in demo["comments"]} == {"VISIBLE", "REMOVED", "DELETED"}
    [edited] = [c for c in demo["comments"] if c["revisions"]]
    assert (edited["revisions"][0]["body"], edited["likedBy"]) == (
        "First draft",
        ["token:host:fan", "token:host:mod"],
    )
    [removed] = [c for c in demo["comments"] if c["state"] == "REMOVED"]
    assert (removed["removedReason"], removed["moderatedBy"]) == ("off-topic", "token:host:mod")
    path = tmp_path / "dump.json"
    path.write_bytes(exported)

    summary = await import_file(empty_storage, "json", path)

    assert (summary.threads_created, summary.skipped, summary.orphans) == (6, Counter(), 0)
    assert await dump(empty_storage) == exported
    assert await comment_counts(empty_storage) == await comment_counts(storage)
    await assert_exact(empty_storage)
    again = await import_file(empty_storage, "json", path)
    assert (again.comments, again.threads_unchanged) == (0, 6)
    assert await dump(empty_storage) == exported


async def test_a_dump_read_back_into_its_own_database_adds_nothing(
    storage: Storage, tmp_path: Path
) -> None:
    assert await load_demo(storage)
    exported = await dump(storage)
    path = tmp_path / "dump.json"
    path.write_bytes(exported)

    summary = await import_file(storage, "json", path)

    assert (summary.comments, summary.threads) == (0, 0)
    assert summary.skipped_threads == Counter({"exists, and not from a dump": 1})
    assert await dump(storage) == exported


async def test_a_dump_is_read_however_it_is_laid_out(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indented and with sorted keys, read in chunks that cut values in two."""
    assert await load_demo(storage)
    exported = await dump(storage, "demo")
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(json.loads(exported), indent=2, sort_keys=True), "utf-8")
    monkeypatch.setattr(jsonstream, "_CHUNK", 7)
    [read] = native.read(path, Counter(), Deadline(60))
    assert (read.key, len(read.comments), read.native) == ("demo", 28, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"threads": []}', "not a threadql export"),
        ('{"format": "threadql", "version": 9, "threads": []}', "version 9"),
        ('{"format": "threadql", "threads": [' + "[" * 100_000, "nested too deeply"),
        ('{"format": "threadql", "threads": [', "not valid JSON"),
    ],
)
def test_a_file_that_is_not_a_dump_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, "utf-8")
    with pytest.raises(ExchangeError, match=message):
        list(native.read(path, Counter(), Deadline(60)))


# -- reading safely ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE disqus [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>',
        '<!DOCTYPE disqus [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
    ],
)
def test_xml_with_entities_is_refused(tmp_path: Path, doctype: str) -> None:
    path = tmp_path / "evil.xml"
    path.write_text(f'<?xml version="1.0"?>{doctype}<disqus><thread/></disqus>', "utf-8")
    with pytest.raises(ExchangeError, match="not well-formed"):
        list(disqus.read(path, Counter(), Deadline(60)))


# -- identities ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["import:disqus:user:janedoe", "user:janedoe"])
async def test_no_token_speaks_for_an_imported_author(
    database_url: str, tmp_path: Path, sub: str
) -> None:
    """Whatever its sub (the id an import once gave Jane, or her id at Disqus), a token is a
    user of the host site's own: a new one, who cannot edit, delete or rename Jane."""
    async with running(database_url, tmp_path) as api:
        await import_file(api.storage, "disqus", DISQUS)
        jane = (await by_source(api.storage, PSOAS, "disqus"))["2001"]
        assert jane.author is not None
        comment_id = ids.encode("Comment", jane.thread_id, jane.id)
        bearer = f"Bearer {mint(SECRET, sub=sub, name='Mallory')}"

        viewer = await api.post("{ viewer { id name } }", authorization=bearer)
        assert viewer["data"]["viewer"]["name"] == "Mallory"
        assert viewer["data"]["viewer"]["id"] != ids.encode("User", jane.author.id)
        for name, fields in (
            ("deleteComment", {}),
            ("editComment", {"body": "Mine now"}),
        ):
            variables = {"input": {"commentId": comment_id, **fields}}
            payload = (await api.post(MUTATIONS[name], variables, authorization=bearer))["data"]
            assert [e["code"] for e in payload[name]["errors"]] == ["FORBIDDEN"], payload

        found = await api.comment(comment_id)
        assert (found["state"], found["author"]["name"]) == ("VISIBLE", "Jane Doe")
        [row] = await api.storage.users_by_ids([jane.author.id])
        assert row == jane.author, "the imported author is as the import left her"


# -- data from elsewhere, held to the API's rules ------------------------------------------------


def dump_user(sub: str, name: str = "Fan", **fields: Any) -> dict[str, Any]:
    return {"origin": "token", "sub": sub, "name": name, "avatarUrl": None, **fields}


def dump_comment(number: int, **fields: Any) -> dict[str, Any]:
    """A comment of a dump as `threadql export` writes it, but for `fields`."""
    return {
        "id": number,
        "parent": None,
        "author": None,
        "state": "VISIBLE",
        "createdAt": "2024-01-01T12:00:00.000000Z",
        "editedAt": None,
        "body": f"comment {number}",
        "likeCount": 0,
        "likedBy": [],
        "revisions": [],
        "removedReason": None,
        "moderatedBy": None,
        **fields,
    }


def dump_thread(*comments: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "key": "elsewhere",
        "title": "From elsewhere",
        "url": None,
        "createdAt": "2024-01-01T00:00:00.000000Z",
        "locked": False,
        "commentCount": len(comments),
        "users": [],
        "comments": list(comments),
        **fields,
    }


async def import_dump(
    storage: Storage, folder: Path, *threads: dict[str, Any], version: int = native.VERSION
) -> Summary:
    path = folder / "elsewhere.json"
    document = {"format": native.FORMAT, "version": version, "threads": list(threads)}
    path.write_text(json.dumps(document), "utf-8")
    return await import_file(storage, "json", path)


async def test_every_listed_like_is_counted_so_its_liker_can_take_it_back(
    storage: Storage, tmp_path: Path
) -> None:
    """A count below its listed likes would go below zero on an unlike; one above them keeps
    likes the source counted without saying whose."""
    fan = "token:host:fan"
    summary = await import_dump(
        storage,
        tmp_path,
        dump_thread(
            dump_comment(1, likeCount=0, likedBy=[fan, fan, "token:host:unlisted"]),
            dump_comment(2, likeCount=5, likedBy=[fan]),
            users=[dump_user("host:fan")],
        ),
    )
    assert (summary.comments, summary.skipped) == (2, Counter())
    c = await by_source(storage, "elsewhere", "json")
    assert (c["1"].like_count, c["2"].like_count) == (1, 5)

    liker = Actor((await storage.upsert_user("host:fan", "Fan", None)).id)
    unliked = await storage.set_like((c["1"].thread_id, c["1"].id), liker, False)
    assert unliked.like_count == 0
    assert (await storage.set_like((c["2"].thread_id, c["2"].id), liker, False)).like_count == 4


async def test_imported_users_have_names_and_avatars_as_tokens_carry_them_and_no_role(
    storage: Storage, tmp_path: Path
) -> None:
    users = [
        dump_user("host:x", "  Ex\u0000ample\n  Person  ", avatarUrl="javascript:alert(1)"),
        dump_user("host:long", "n" * 100_000, avatarUrl="https://img.example/" + "a" * 3000),
        dump_user("host:admin", "Ad Min", avatarUrl="https://img.example/a.png", role="admin"),
    ]
    comments = [dump_comment(n, author=f"token:{user['sub']}") for n, user in enumerate(users, 1)]
    await import_dump(storage, tmp_path, dump_thread(*comments, users=users))
    legacy = dump_thread(
        dump_comment(1, author="host:old-admin"),
        key="legacy",
        users=[{"sub": "host:old-admin", "name": "Old", "avatarUrl": None, "role": "admin"}],
    )
    await import_dump(storage, tmp_path, legacy, version=1)

    assert isinstance(storage, SQLStorage)
    rows = await storage._read("SELECT sub, name, avatar_url, role FROM users ORDER BY id")
    assert [tuple(row) for row in rows] == [
        ("host:x", "Example Person", None, "user"),
        ("host:long", "n" * 100, None, "user"),
        ("host:admin", "Ad Min", "https://img.example/a.png", "user"),
        ("host:old-admin", "Old", None, "user"),
    ]


async def test_a_key_longer_than_the_api_takes_skips_its_thread(
    storage: Storage, tmp_path: Path
) -> None:
    summary = await import_dump(storage, tmp_path, dump_thread(dump_comment(1), key="k" * 100_000))
    assert summary.skipped_threads == Counter({"`key` must be at most 255 characters long": 1})
    assert summary.skipped == Counter({"in a skipped thread": 1})
    assert await storage.thread_total() == 0


async def test_a_title_and_a_page_address_are_held_to_the_apis_limits(
    storage: Storage, tmp_path: Path
) -> None:
    long_title = dump_thread(dump_comment(1), title="t" * 100_000, url="javascript:alert(1)")
    await import_dump(storage, tmp_path, long_title)
    found = await thread(storage, "elsewhere")
    assert (found.title, found.url) == ("t" * 300, None)


def revision(body: str) -> dict[str, Any]:
    return {
        "body": body,
        "writtenAt": "2024-01-01T12:00:00.000000Z",
        "replacedAt": "2024-01-01T12:01:00.000000Z",
    }


async def test_bodies_are_held_to_the_apis_limits(storage: Storage, tmp_path: Path) -> None:
    """Control characters go, as from a client; a body longer than a client may send is
    skipped, since cutting it would say what its author did not."""
    summary = await import_dump(
        storage,
        tmp_path,
        dump_thread(
            dump_comment(1, body="Fine\u0000 \u0007text\ud800\r\nsecond line"),
            dump_comment(2, body="b" * 10_001),
            dump_comment(3, body="c", revisions=[revision("r" * 10_001)]),
        ),
    )
    assert summary.skipped == Counter({"body longer than 10000 characters": 2})
    [first] = (await by_source(storage, "elsewhere", "json")).values()
    assert first.body == "Fine text\nsecond line"


# -- data that is not what its format says -----------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"createdAt": "0001-01-01T00:00:00+01:00"},
        {"createdAt": "9999-12-31T23:59:59-14:00"},
        {"editedAt": "0001-01-01T00:00:00+01:00"},
        {"createdAt": 1704110400},
    ],
)
async def test_a_date_with_no_time_in_utc_skips_its_comment(
    storage: Storage, tmp_path: Path, change: dict[str, Any]
) -> None:
    reply = dump_comment(2, parent=1)
    summary = await import_dump(storage, tmp_path, dump_thread(dump_comment(1, **change), reply))
    assert (summary.comments, summary.orphans) == (1, 1)
    assert summary.skipped == Counter({"unreadable date": 1})


async def test_a_disqus_date_with_no_time_in_utc_skips_its_post(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "disqus.xml"
    path.write_text(
        DISQUS.read_text("utf-8").replace("2024-03-01T07:15:00-02:00", "0001-01-01T00:00:00+01:00"),
        "utf-8",
    )
    summary = await import_file(storage, "disqus", path)
    assert summary.skipped["unreadable date"] == 2  # 2005, and 2011 as before


@pytest.mark.parametrize("count", [1e20, 10**20, -1, "7", True, 2.0])
async def test_a_like_count_that_is_no_count_skips_its_comment(
    storage: Storage, tmp_path: Path, count: object
) -> None:
    summary = await import_dump(storage, tmp_path, dump_thread(dump_comment(1, likeCount=count)))
    assert (summary.comments, summary.skipped) == (0, Counter({"unreadable like count": 1}))


async def test_a_number_of_more_digits_than_python_reads_skips_its_comment(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "digits.json"
    document = {"format": native.FORMAT, "version": native.VERSION, "threads": [dump_thread()]}
    text = json.dumps(document).replace('"comments": []', '"comments": [%s, %s]')
    many = json.dumps(dump_comment(1)).replace('"likeCount": 0', '"likeCount": ' + "9" * 5000)
    path.write_text(text % (many, json.dumps(dump_comment(2))), "utf-8")
    summary = await import_file(storage, "json", path)
    assert (summary.comments, summary.skipped) == (1, Counter({"unreadable like count": 1}))


@pytest.mark.parametrize("body", [42, None, ["a"], {"text": "a"}])
async def test_a_body_that_is_not_text_skips_its_comment(
    storage: Storage, tmp_path: Path, body: object
) -> None:
    summary = await import_dump(
        storage, tmp_path, dump_thread(dump_comment(1, body=body), dump_comment(2))
    )
    assert (summary.comments, summary.skipped) == (1, Counter({"unreadable body": 1}))


@pytest.mark.parametrize("key", [{"page": "a"}, ["a"], 7, None])
async def test_a_key_that_is_not_text_skips_its_thread(
    storage: Storage, tmp_path: Path, key: object
) -> None:
    summary = await import_dump(
        storage, tmp_path, dump_thread(dump_comment(1), key=key), dump_thread(dump_comment(1))
    )
    assert summary.skipped_threads == Counter({"unreadable key": 1})
    assert (summary.threads_created, summary.skipped["in a skipped thread"]) == (1, 1)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("text", b"Lovely post.", "unreadable body"),
        ("author", b"\xffHana", "unreadable author"),
        ("likes", "many", "unreadable like count"),
        ("likes", 1e20, "unreadable like count"),
        ("created", "yesterday", "unreadable date"),
        ("created", -1000.0, "unreadable date"),  # 1969: before any comment was written
    ],
)
async def test_an_isso_value_of_another_type_skips_its_comment(
    storage: Storage, tmp_path: Path, column: str, value: object, reason: str
) -> None:
    """SQLite keeps any value in any column: Isso's first comment, a BLOB where text was."""
    path = isso_database(tmp_path)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(f"UPDATE comments SET {column} = ? WHERE id = 1", (value,))
    summary = await import_file(storage, "isso", path)
    assert summary.skipped == Counter({reason: 1, "not approved, no replies": 1})
    assert (summary.comments, summary.orphans) == (5, 2), "its reply, 2, is at the top level"


def recursive_isso_database(folder: Path) -> Path:
    """Isso's tables, but `comments` a view that counts for ever and never finds a row."""
    path = folder / "endless.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(
            """
            CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256), title VARCHAR(256));
            INSERT INTO threads VALUES (1, '/posts/endless/', 'Endless');
            CREATE VIEW comments AS
                WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)
                SELECT 1 AS tid, x AS id, NULL AS parent, 0.0 AS created, NULL AS modified,
                    1 AS mode, '' AS text, NULL AS author, 0 AS likes
                FROM n WHERE x < 0;
            """
        )
    return path


async def test_a_read_that_never_ends_stops_at_the_time_bound(
    storage: Storage, tmp_path: Path
) -> None:
    path = recursive_isso_database(tmp_path)
    with pytest.raises(TimedOut, match="time bound") as stopped:
        await import_file(storage, "isso", path, limits=Limits(timeout=0.5))
    assert stopped.value.summary == Summary()
    assert await storage.thread_total() == 0


# -- the rules on their own ----------------------------------------------------------------------


def comment(
    comment_id: str, parent: str | None, minute: int, *, hidden: str | None = None
) -> SourceComment:
    return SourceComment(
        id=comment_id,
        parent_id=parent,
        author=guest("test", comment_id),
        body=f"comment {comment_id}",
        created_at=datetime(2024, 1, 1, 12, minute, tzinfo=UTC),
        hidden=hidden,
    )


def test_cycles_and_self_parents_become_top_level() -> None:
    source = SourceThread(
        "k",
        "",
        None,
        None,
        [
            comment("a", "c", 1),  # a -> c -> b -> a: the oldest, a, becomes top level
            comment("b", "a", 2),
            comment("c", "b", 3),
            comment("d", "d", 4),
            comment("e", "d", 0),  # the oldest, but written after its parent
        ],
    )
    plan = plan_thread(source, "test", {}, 10_000)
    written = [c.source_id for c in plan.thread.comments]
    assert written == ["d", "e", "a", "b", "c"]
    parents = {c.source_id: c.parent_index for c in plan.thread.comments}
    assert parents == {"d": None, "e": 0, "a": None, "b": 2, "c": 3}
    assert (plan.orphans, plan.thread.title) == (2, "k")


def test_placeholders_only_above_something_visible() -> None:
    source = SourceThread(
        "k",
        "K",
        None,
        None,
        [
            comment("gone", None, 1, hidden="deleted"),
            comment("gone-too", "gone", 2, hidden="spam"),
            comment("kept", None, 3, hidden="deleted"),
            comment("hidden-middle", "kept", 4, hidden="spam"),
            comment("visible", "hidden-middle", 5),
        ],
    )
    plan = plan_thread(source, "test", {"visible-before": 7}, 10_000)
    states = {c.source_id: (c.state, c.author, c.body) for c in plan.thread.comments}
    assert states == {
        "kept": (CommentState.DELETED, None, ""),
        "hidden-middle": (CommentState.DELETED, None, ""),
        "visible": (CommentState.VISIBLE, ("test", "guest:visible"), "comment visible"),
    }
    assert plan.skipped == Counter({"deleted, no replies": 1, "spam, no replies": 1})


def test_a_reply_to_an_earlier_import_names_the_stored_comment() -> None:
    source = SourceThread("k", "K", None, None, [comment("old", None, 1), comment("new", "old", 2)])
    plan = plan_thread(source, "test", {"old": 41}, 10_000)
    [new] = plan.thread.comments
    assert (new.parent_id, new.parent_index, plan.already) == (41, None, 1)


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        ("<p>a</p><p>b<br>c</p>", "a\n\nb\nc"),
        ("<p># not a title</p><p>1. not a list</p>", "\\# not a title\n\n1\\. not a list"),
        ("2 * 3 = 6, _x_ [y] `z` &amp;copy;", "2 \\* 3 = 6, \\_x\\_ \\[y\\] \\`z\\` \\&copy;"),
        ('<a href="https://e.example/a b">link</a>', "[link](https://e.example/a%20b)"),
        ('<a href="javascript:alert(1)">x</a><script>alert(2)</script>', "x"),
        ("<blockquote><p>one</p><p>two</p></blockquote>", "> one\n>\n> two"),
        ("<ul><li>a<li>b</ul><ol><li>c</li></ol>", "- a\n- b\n\n1. c"),
        ("<pre><code>x = *1*\n  y</code></pre>", "```\nx = *1*\n  y\n```"),
        ("see https://e.example/a_b", "see https://e.example/a_b"),
    ],
)
def test_html_bodies_become_markdown(html: str, markdown: str) -> None:
    assert html_to_markdown(html) == markdown


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.processes
def test_the_command_line_end_to_end(tmp_path: Path) -> None:
    site = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/site.db", "THREADQL_DEMO": "false"}
    imported = run(["import", "wordpress", str(WORDPRESS)], site)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == [
        "imported 7 comments in 2 threads (2 new, 0 added to), 6 new users",
        "replies to a missing comment, imported at the top level: 1",
        "skipped 4 comments (deleted, no replies: 1; in a skipped thread: 1; pingback: 1;"
        " spam, no replies: 1)",
        "skipped 1 thread (post not published: 1)",
    ]
    assert imported.stderr == "", "no progress line when stderr is not a terminal"
    one = run(["import", "disqus", str(DISQUS), "--thread-key", PSOAS], site)
    assert one.stdout.startswith("imported 9 comments in 1 thread (1 new, 0 added to)")

    exported = run(["export"], site)
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == "threadql: exported 16 comments in 3 threads\n"
    path = tmp_path / "dump.json"
    path.write_text(exported.stdout, "utf-8")
    restored = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/restored.db"}
    assert run(["import", "json", str(path)], restored).returncode == 0
    assert run(["export"], restored).stdout == exported.stdout
    single = run(["export", "--thread-key", ABOUT], restored)
    assert [t["key"] for t in json.loads(single.stdout)["threads"]] == [ABOUT]

    wrong = run(["import", "json", str(DISQUS)], site)
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert wrong.stderr.startswith("threadql: import: ")
    unknown = run(["export", "--thread-key", "nope"], site)
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert "no thread has the key 'nope'" in unknown.stderr


@pytest.mark.processes
def test_the_command_line_reports_bad_data_without_a_traceback(tmp_path: Path) -> None:
    site = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/site.db", "THREADQL_DEMO": "false"}
    path = tmp_path / "bad.json"
    bad = [
        dump_comment(1, createdAt="0001-01-01T00:00:00+01:00"),
        dump_comment(2, likeCount=1e20),
        dump_comment(3, body=["not", "text"]),
        dump_comment(4),
    ]
    threads = [dump_thread(*bad), dump_thread(dump_comment(1), key={"an": "object"})]
    document = {"format": native.FORMAT, "version": native.VERSION, "threads": threads}
    path.write_text(json.dumps(document), "utf-8")

    imported = run(["import", "json", str(path)], site)

    assert (imported.returncode, imported.stderr) == (0, "")
    assert imported.stdout.splitlines() == [
        "imported 1 comment in 1 thread (1 new, 0 added to), 1 new user",
        "skipped 4 comments (in a skipped thread: 1; unreadable body: 1;"
        " unreadable date: 1; unreadable like count: 1)",
        "skipped 1 thread (unreadable key: 1)",
    ]

    isso = isso_database(tmp_path)
    with closing(sqlite3.connect(isso)) as connection, connection:
        connection.execute("UPDATE comments SET text = ? WHERE id = 7", (b"\xff",))
    blob = run(["import", "isso", str(isso)], site)
    assert (blob.returncode, blob.stderr) == (0, "")
    assert "unreadable body: 1" in blob.stdout

    endless = run(
        ["import", "isso", str(recursive_isso_database(tmp_path)), "--timeout", "0.5"], site
    )
    assert endless.returncode == 1
    assert endless.stdout == "imported 0 comments in 0 threads (0 new, 0 added to), 0 new users\n"
    assert endless.stderr == (
        "threadql: import: stopped after 0.5 s, the import's time bound: the threads imported"
        " so far stay, and running it again adds the rest (--timeout 0.5)\n"
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    show = cli._progress("disqus")
    assert show is not None
    summary = Summary(threads_created=1, comments=9)
    show(summary)
    summary.threads_created, summary.comments = 2, 10
    show(summary)
    assert terminal.getvalue() == "\rdisqus: threads 1, comments 9\rdisqus: threads 2, comments 10"
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert cli._progress("disqus") is None
