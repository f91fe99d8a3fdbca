"""Text as it is stored, made once when it is written: Markdown bodies as sanitised HTML and
plain text, names as one clean line."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

if TYPE_CHECKING:
    from collections.abc import Sequence

    from markdown_it.renderer import RendererHTML
    from markdown_it.token import Token
    from markdown_it.utils import EnvType, OptionsDict

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": True, "breaks": True})
_markdown.enable(["linkify", "strikethrough"])


def _image_as_link(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """An image in a comment becomes a link to it: nothing loads until a reader asks."""
    token = tokens[idx]
    src = escapeHtml(str(token.attrGet("src") or ""))
    alt = escapeHtml(token.content or str(token.attrGet("src") or ""))
    return f'<a href="{src}">{alt}</a>'


_markdown.add_render_rule("image", _image_as_link)

# What a comment may contain once rendered: text formatting, lists, quotes, code and links.
ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "hr", "li", "ol", "p", "pre", "s", "strong", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}

# C0 and C1 control characters but tab and newline, lone surrogates, and the non-characters
# U+FFFE and U+FFFF: no text shows them, and XML cannot hold most of them.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Bidirectional embeddings, overrides and isolates: in a name they would turn the text
# beside it around. The marks (U+200E, U+200F) only settle neutral characters and stay.
DIRECTION_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")

_BLOCK_END = re.compile(r"</(p|li|blockquote|pre)>|<hr\s*/?>")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    """A comment is shown on pages of other sites: a link without a scheme would resolve
    against them, so only absolute http(s) and mailto links keep their target."""
    if attribute != "href":
        return value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or (
        parts.scheme != "mailto" and not parts.netloc
    ):
        return None
    return value


def render_html(body: str) -> str:
    """Markdown with raw HTML off, then an allow-list: nothing in a comment runs in a browser."""
    return nh3.clean(
        _markdown.render(body),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_absolute_links_only,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="nofollow ugc noopener noreferrer",
    ).strip()


def render_text(body_html: str) -> str:
    """Plain text of rendered HTML, paragraphs kept apart by a blank line."""
    marked = _BLOCK_END.sub(lambda m: m.group(0) + "\n\n", body_html)
    text = html.unescape(nh3.clean(marked, tags=set()))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def one_line(text: str) -> str:
    """A name as it shows: runs of whitespace (newlines and tabs included) as one space, and
    no control or direction-control character."""
    kept = DIRECTION_CONTROL.sub("", CONTROL.sub("", " ".join(text.split())))
    return " ".join(kept.split())
