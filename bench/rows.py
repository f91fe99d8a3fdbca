"""Rows of the main table: one system under one workload, measured with its memory watched."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.load import LoadGenerator, LoadResult
    from bench.memory import ServerMemory


class Kind(enum.Enum):
    THREADQL = "threadql"
    PEER = "peer"  # Isso as deployed: each workload's other rows are compared with it
    PEER_VARIANT = "peer variant"  # Isso asked for something else, such as plain text
    FLOOR = "floor"  # every row is compared with it


@dataclass(frozen=True)
class Row:
    workload: str  # its first word, such as "W1", groups the rows
    system: str
    kind: Kind
    comments: int | None  # in each answer; None where not counted
    statements: int | None  # SQL statements per request; None where not counted
    load: LoadResult
    peak_mib: float  # peak RSS of the server's processes during the workload

    @property
    def workload_id(self) -> str:
        return self.workload.split()[0]


def measured(
    generator: LoadGenerator, url: str, body: bytes | None, seconds: float, memory: ServerMemory
) -> tuple[LoadResult, float]:
    """Load `url` (see `LoadGenerator.run`); the result and the server's peak MiB meanwhile."""
    memory.reset()
    load = generator.run(url, body, seconds)
    return load, memory.peak_mib()
