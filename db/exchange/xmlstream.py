"""XML exports read one record at a time, through defusedxml: no DTD, no entity, no download."""

from __future__ import annotations

from typing import TYPE_CHECKING

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse

from db.exchange.source import ExchangeError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from xml.etree.ElementTree import Element


def local(tag: str) -> str:
    """A name without its namespace: exports differ in the namespace versions they declare."""
    return tag.rpartition("}")[2]


def child(element: Element, name: str) -> Element | None:
    return next((c for c in element if local(c.tag) == name), None)


def children(element: Element, name: str) -> list[Element]:
    return [c for c in element if local(c.tag) == name]


def text(element: Element | None, name: str | None = None) -> str:
    """The trimmed text of an element, or of its first child called `name`; "" if absent."""
    if element is not None and name is not None:
        element = child(element, name)
    return (element.text or "").strip() if element is not None else ""


def attribute(element: Element | None, name: str) -> str | None:
    """An attribute by its name without namespace (`dsq:id` is `id`)."""
    if element is None:
        return None
    return next((v for k, v in element.attrib.items() if local(k) == name), None)


def records(path: Path, depth: int) -> Iterator[Element]:
    """Each element that ends at `depth` below the root (the root's children are at 1),
    complete, and dropped from the tree once the caller has moved on."""
    open_elements: list[Element] = []
    try:
        for event, element in iterparse(str(path), events=("start", "end")):
            if event == "start":
                open_elements.append(element)
                continue
            open_elements.pop()
            if len(open_elements) == depth:
                yield element
                open_elements[-1].remove(element)
    except (ParseError, DefusedXmlException) as error:
        raise ExchangeError(f"{path} is not well-formed XML: {error}") from error
