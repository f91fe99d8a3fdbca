"""The results as one Markdown table, for the terminal and for bench/out/results.md."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.load import LoadResult


@dataclass(frozen=True)
class Row:
    workload: str
    comments: int
    statements: int
    load: LoadResult


def markdown(rows: Sequence[Row], generator: str, seconds: float) -> str:
    lines = [
        "| workload | comments returned | SQL statements/request | median ms | p99 ms"
        " | requests/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.workload} | {r.comments} | {r.statements} | {r.load.median_ms:.2f}"
        f" | {r.load.p99_ms:.2f} | {r.load.requests_per_second:.1f} |"
        for r in rows
    ]
    # p99 of a few dozen requests is close to their maximum, so the counts are shown.
    measured = ", ".join(f"{r.load.requests} ({r.workload.split()[0]})" for r in rows)
    lines += [
        "",
        f"Load: {generator}, {seconds:g} s per workload against one uvicorn worker;"
        f" Python {platform.python_version()}; {os.cpu_count()} CPUs.",
        f"Requests measured: {measured}.",
    ]
    return "\n".join(lines) + "\n"
