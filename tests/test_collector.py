"""The server's garbage collector settings."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import pytest

from server import collector

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def scanned(obj: object) -> bool:
    """Whether a collection of some generation would look at `obj`."""
    return any(o is obj for generation in range(3) for o in gc.get_objects(generation))


@pytest.mark.usefixtures("restored")
def test_settling_keeps_what_exists_out_of_collections_and_collects_less_often() -> None:
    kept: list[object] = []  # a container, tracked by the collector
    assert scanned(kept)
    collector.settle()
    assert not scanned(kept)
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
