"""HTML comment bodies (Disqus, WordPress) as the Markdown that threadql keeps as a body.

Paragraphs, line breaks, links, emphasis, code, quotes and lists carry over; every other tag
is dropped with its text kept, scripts and styles with their text. Text that Markdown would
read as markup is escaped, so that the body renders as the text the source showed. The
result is only a body: its HTML is rendered by db.render like any other body's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from db.rules import clean_text

_INLINE = {"b": "**", "strong": "**", "i": "*", "em": "*", "s": "~~", "del": "~~", "strike": "~~"}
_BLOCKS = {
    "p", "div", "section", "article", "header", "footer", "table", "tr", "figure",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_DROPPED = {"script", "style", "head", "title", "iframe", "object", "template", "noscript"}
_FRAMES = {"a", "blockquote", "ul", "ol", "li", "pre", "code"}
_SCHEMES = {"http", "https", "mailto"}

_URL = re.compile(r"(?:https?://|www\.)\S+")
_ESCAPED = re.compile(r"([\\`*_\[\]<~])|&(?=#?\w+;)")
_LINE_MARKS = (re.compile(r"^( *)([#>+=-])", re.M), re.compile(r"^( *\d+)([.)])", re.M))
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass
class _Frame:
    """An open element whose text is rewritten once it closes."""

    tag: str
    parts: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # a link's text, unescaped
    href: str | None = None
    items: int = 0  # list items so far, for numbering


def _escape(text: str) -> str:
    """Markdown's punctuation escaped, web addresses left whole for linkify."""
    pieces, last = [], 0
    for match in _URL.finditer(text):
        pieces += [_ESCAPED.sub(_backslash, text[last : match.start()]), match.group()]
        last = match.end()
    pieces.append(_ESCAPED.sub(_backslash, text[last:]))
    return "".join(pieces)


def _backslash(match: re.Match[str]) -> str:
    return "\\" + match.group(0)


def _line_marks(text: str, at_line_start: bool) -> str:
    """Escape what would start a heading, quote or list where a line starts."""
    head, rest = "", text
    if not at_line_start:
        head, newline, rest = text.partition("\n")
        if not newline:
            return text
        head += newline
    for mark in _LINE_MARKS:
        rest = mark.sub(r"\1\\\2", rest)
    return head + rest


def _safe_url(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # an address that cannot be parsed, such as "http://[x"
        return None
    if scheme not in _SCHEMES:
        return None
    for char in " ()<>":
        url = url.replace(char, f"%{ord(char):02X}")
    return url


class _ToMarkdown(HTMLParser):
    def __init__(self, newlines: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.newlines = newlines
        self.stack = [_Frame("")]
        self.dropping = 0

    @property
    def parts(self) -> list[str]:
        return self.stack[-1].parts

    def _inside(self, tag: str) -> bool:
        return any(frame.tag == tag for frame in self.stack)

    def _at_line_start(self) -> bool:
        for frame in reversed(self.stack):
            so_far = "".join(frame.parts).rstrip(" ")
            if so_far:
                return so_far.endswith("\n")
            if frame.tag not in ("a", "code"):
                break
        return True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropping += 1
        if self.dropping:
            return
        attributes = dict(attrs)
        if tag == "br":
            self.parts.append("\n")
        elif tag == "hr":
            self.parts.append("\n\n---\n\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag in _INLINE and not self._inside("pre"):
            self.parts.append(_INLINE[tag])
        elif tag == "img":
            src = _safe_url(attributes.get("src"))
            if src:
                self.parts.append(f"![{_escape(attributes.get('alt') or '')}]({src})")
        elif tag in _FRAMES:
            while tag == "li" and self.stack[-1].tag == "li":  # an item closed by the next
                self._close()
            self.stack.append(_Frame(tag, href=_safe_url(attributes.get("href"))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _FRAMES and tag not in _DROPPED:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping:
            return
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag in _INLINE and not self._inside("pre"):
            self.parts.append(_INLINE[tag])
        elif tag in _FRAMES and any(frame.tag == tag for frame in self.stack[1:]):
            while self._close().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self.dropping:
            return
        if self._inside("pre"):
            self.parts.append(data)
            return
        if self.stack[-1].tag in ("ul", "ol") and not data.strip():
            return  # layout between list items
        if self._inside("code"):
            self.parts.append(re.sub(r"\s+", " ", data))
            return
        if self.newlines:
            text = re.sub(r"[ \t\f\v]+", " ", data.replace("\r\n", "\n"))
            text = re.sub(r" ?\n ?", "\n", text)
        else:
            text = re.sub(r"\s+", " ", data)
        at_line_start = self._at_line_start()
        if at_line_start:
            text = text.lstrip(" ")
        for frame in self.stack:
            if frame.tag == "a":
                frame.raw.append(text)
        self.parts.append(_line_marks(_escape(text), at_line_start))

    def _close(self) -> _Frame:
        frame = self.stack.pop()
        text = _BLANK_RUNS.sub("\n\n", "".join(frame.parts)).strip()
        if frame.tag == "a":
            shown = "".join(frame.raw).strip()
            if frame.href and shown in (frame.href, ""):
                text = f"<{frame.href}>"
            elif frame.href:
                text = f"[{text}]({frame.href})"
        elif frame.tag == "code" and self._inside("pre"):
            text = "".join(frame.parts)
        elif frame.tag == "code" and text:
            ticks = "``" if "`" in text else "`"
            text = f"{ticks} {text} {ticks}" if ticks == "``" else f"`{text}`"
        elif frame.tag == "pre":
            code = "".join(frame.parts).strip("\n")
            fence = "~~~~" if "```" in code else "```"
            text = f"\n\n{fence}\n{code}\n{fence}\n\n"
        elif frame.tag == "blockquote":
            quoted = "\n".join(f"> {line}".rstrip() for line in text.splitlines())
            text = f"\n\n{quoted}\n\n"
        elif frame.tag in ("ul", "ol"):
            text = f"\n\n{text}\n\n"
        elif frame.tag == "li":
            parent = self.stack[-1]
            parent.items += 1
            marker = f"{parent.items}. " if parent.tag == "ol" else "- "
            indented = text.replace("\n", "\n" + " " * len(marker))
            text = f"{marker}{indented}\n"
        self.parts.append(text)
        return frame

    def markdown(self) -> str:
        self.close()
        while len(self.stack) > 1:
            self._close()
        lines = "\n".join(line.rstrip() for line in "".join(self.parts).splitlines())
        return _BLANK_RUNS.sub("\n\n", lines).strip()


def html_to_markdown(html: str, *, newlines: bool = False) -> str:
    """`newlines`: line breaks in the text are the author's (WordPress), not HTML layout."""
    parser = _ToMarkdown(newlines)
    parser.feed(clean_text(html))
    return parser.markdown()
