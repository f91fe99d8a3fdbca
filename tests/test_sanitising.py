"""Whatever a body holds, `bodyHtml` is inert, and it is rendered when written, not when read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import pytest

from db.render import ALLOWED_TAGS, render_html, render_text
from tests.conftest import new_comment

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tests.conftest import GraphQLClient

ATTACKS = [
    "<script>alert(1)</script>",
    "Hi <img src=x onerror=alert(1)>",
    '<a href="https://x" onclick="alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![pixel](https://tracker.example/p.gif)",
    '![x](javascript:alert(1) "t")',
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    '<svg onload="alert(1)"></svg>',
    "<<script>script>alert(1)<</script>/script>",
    "<div style=\"background:url('javascript:alert(1)')\">x</div>",
    "```html\n<script>alert(1)</script>\n```",
    '[x](https://ok.example "t" onmouseover=alert(1))',
]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_inert(html: str) -> None:
    """Only formatting tags, no event handlers or styles, links only to http(s) and mailto."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in ALLOWED_TAGS, html
        for name, value in attrs:
            assert name in {"href", "title", "rel"}, html
            if name == "href":
                assert (value or "").startswith(("https://", "http://", "mailto:")), html


@pytest.mark.parametrize("body", ATTACKS)
def test_rendered_html_is_inert(body: str) -> None:
    assert_inert(render_html(body))


def test_markdown_still_renders() -> None:
    html = render_html(
        "**bold** _em_ `code` ~~gone~~\n\n> quoted\n\n- one\n- two\n\n[site](https://x.example)"
    )
    for fragment in ("<strong>bold</strong>", "<em>em</em>", "<code>code</code>", "<s>gone</s>",
                     "<blockquote>", "<li>one</li>",
                     '<a href="https://x.example" rel="nofollow ugc noopener noreferrer">site</a>'):  # fmt: skip
        assert fragment in html


def test_images_become_links_and_text_stays_readable() -> None:
    html = render_html("![a photo](https://img.example/p.png)")
    assert (
        html
        == '<p><a href="https://img.example/p.png" rel="nofollow ugc noopener noreferrer">a photo</a></p>'
    )
    assert render_text(render_html("One\n\nTwo & <three>")) == "One\n\nTwo & <three>"


async def test_body_html_through_the_api(app: Starlette, gql: GraphQLClient) -> None:
    storage = app.state.storage
    thread = await storage.create_thread("attacks", "Attacks", None, datetime.now(UTC))
    await storage.insert_comments(thread.id, [new_comment(b, datetime.now(UTC)) for b in ATTACKS])
    data = await gql.data(
        '{ thread(key: "attacks") { comments(first: 100) { nodes { body bodyHtml excerpt { text } } } } }'
    )
    nodes = data["thread"]["comments"]["nodes"]
    assert [n["body"] for n in nodes] == ATTACKS
    for node in nodes:
        assert_inert(node["bodyHtml"])
    assert nodes[0]["bodyHtml"] == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


async def test_html_is_not_rendered_on_read(app: Starlette, gql: GraphQLClient) -> None:
    """Reads return what the write stored: rendering happens once, when a body is written."""
    storage = app.state.storage
    thread = await storage.create_thread("stored", "Stored", None, datetime.now(UTC))
    comment = replace(new_comment("**x**", datetime.now(UTC)), body_html="<p>stored once</p>")
    await storage.insert_comments(thread.id, [comment])
    data = await gql.data('{ thread(key: "stored") { comments { nodes { bodyHtml } } } }')
    assert data["thread"]["comments"]["nodes"] == [{"bodyHtml": "<p>stored once</p>"}]
