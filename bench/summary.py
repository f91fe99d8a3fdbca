"""The main table: every request workload on every system, beside Isso and the floor."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.backend import CACHE_OFF_LABEL
from bench.isso import PEER_COMMENTS, WORKERS
from bench.load import WARMUP_SECONDS
from bench.rows import Kind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.rows import Row

TIMES = "\N{MULTIPLICATION SIGN}"
_ORDER = {Kind.THREADQL: 0, Kind.PEER: 1, Kind.PEER_VARIANT: 2, Kind.FLOOR: 3}


@dataclass(frozen=True)
class Context:
    generator: str
    seconds: float
    services: str
    isso: str | None  # its version, or None when it was skipped
    floor_bytes: int | None  # the size of the floor's answer, None when it was skipped
    memory_per_workload: bool  # whether peaks were reset before each workload


def sorted_rows(rows: Sequence[Row]) -> list[Row]:
    """By workload, then threadql (backends in their order), Isso, the floor."""
    return sorted(rows, key=lambda r: (r.workload_id, _ORDER[r.kind]))


def main_table(rows: Sequence[Row], context: Context) -> str:
    rows = sorted_rows(rows)
    floor = next((r for r in rows if r.kind is Kind.FLOOR), None)
    peers = {r.workload_id: r for r in rows if r.kind is Kind.PEER}
    lines = [
        "| workload | system | comments per answer | SQL statements/request | requests/s"
        " | median ms | p99 ms | peak RSS MiB | vs Isso | vs floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peer = peers.get(r.workload_id)
        lines.append(
            f"| {r.workload} | {r.system} | {_count(r.comments)} | {_count(r.statements)}"
            f" | {r.load.requests_per_second:,.1f} | {_latency(r, r.load.median_ms)}"
            f" | {_latency(r, r.load.p99_ms)} | {r.peak_mib:.0f} | {_ratio(r, peer)}"
            f" | {_ratio(r, floor)} |"
        )
    lines += ["", *_notes(rows, context)]
    return "\n".join(lines) + "\n"


def chart_note(rows: Sequence[Row]) -> str:
    """What the chart cannot say in its labels."""
    parts = []
    ours = next((r for r in rows if r.kind is Kind.THREADQL and r.workload_id == "W2"), None)
    if ours and any(r.kind is Kind.PEER and r.workload_id == "W2" for r in rows):
        parts.append(
            f"W2 on Isso: a {PEER_COMMENTS:,}-comment thread answered whole; on threadql: the"
            f" first page ({_count(ours.comments)} comments) of a 10,000-comment thread."
        )
    if any(CACHE_OFF_LABEL in r.system for r in rows):
        parts.append(f"{CACHE_OFF_LABEL}: THREADQL_RESPONSE_CACHE=false.")
    parts.append("Details: bench/out/results.md.")
    return " ".join(parts)


def w3_note(rows: Sequence[Row]) -> str | None:
    """W3 against W2 on each backend that ran both."""
    parts = []
    for w3 in (r for r in rows if r.workload_id == "W3"):
        w2 = next(r for r in rows if r.workload_id == "W2" and r.system == w3.system)
        same = "equal, as they must be" if w3.statements == w2.statements else "NOT EQUAL"
        median = w3.load.median_ms / w2.load.median_ms
        p99 = w3.load.p99_ms / w2.load.p99_ms
        parts.append(
            f"on {w3.system}, W3/W2 median latency {median:.2f}{TIMES} (p99 {p99:.2f}{TIMES}),"
            f" SQL statements per request {w3.statements} and {w2.statements}, {same}"
        )
    return f"W3: {'; '.join(parts)}." if parts else None


def _notes(rows: Sequence[Row], context: Context) -> list[str]:
    measured = ", ".join(f"{r.load.requests} ({r.workload_id} {r.system})" for r in rows)
    notes = [
        f"Load: {context.generator}, {context.seconds:g} s per workload after a"
        f" {WARMUP_SECONDS:g} s warm-up, one server worker each; Python"
        f" {platform.python_version()}; {os.cpu_count()} CPUs; {context.services}.",
        f"Requests measured: {measured}.",
        "vs Isso: requests/s over those of Isso, rendering Markdown as it does by default,"
        " under the same workload; vs floor: over those of the floor.",
    ]
    if context.isso is not None:
        notes.append(
            f"Isso {context.isso}: its own virtualenv, SQLite, `gunicorn --workers {WORKERS}`"
            " (the sync worker, which closes the connection after each answer), moderation,"
            " e-mail and spam guard off. The same comments, posted through its API; it keeps"
            " one level of replies, so deeper ones sit under their top-level comment. W1:"
            " `GET /?uri=/demo`, Isso rendering each comment's Markdown on every request"
            " (threadql renders it once, when the comment is written), and with `&plain=1`,"
            f" the source only. W2: `GET /?uri=…` of the first {PEER_COMMENTS:,} comments of"
            " the 10,000-comment thread, answered whole, with no `limit` or `nested_limit`"
            " (Isso's own page sends `nested_limit=5` and fetches more on a click). SQL"
            " statements counted inside an Isso app of its own, by wrapping its database"
            " wrapper's `execute` (which opens a connection for each)."
        )
    if context.floor_bytes is not None:
        notes.append(
            "Floor: a bare Starlette endpoint under uvicorn with `threadql serve`'s options"
            " (uvloop, httptools, access log), answering W1's POST with threadql's W1 response"
            f" ({context.floor_bytes:,} bytes), encoded beforehand."
        )
    if any(CACHE_OFF_LABEL in r.system for r in rows):
        notes.append(
            "threadql's defaults keep the encoded answer to an anonymous query and serve it"
            " again after one statement that reads the thread's version, until a write moves"
            f' it. "{CACHE_OFF_LABEL}" rows: THREADQL_RESPONSE_CACHE=false, every answer'
            " computed afresh; W3 runs only so, since an answer from the cache costs the same"
            " whatever the thread's size."
        )
    notes.append(
        "W4: requests/s are addComment mutations acknowledged per second; SQL statements are"
        " those of one top-level comment by a signed-in writer, counted in-process."
    )
    w3 = w3_note(rows)
    if w3:
        notes.append(w3)
    notes.append(
        "Peak RSS: the highest resident memory of the server's processes during the workload"
        " (VmHWM, reset before each; Isso's gunicorn master and worker summed)."
        if context.memory_per_workload
        else "Peak RSS: VmHWM since the server started (it could not be reset per workload)."
    )
    return [line for note in notes for line in (note, "")][:-1]


def _latency(row: Row, ms: float) -> str:
    return f"{ms:.2f}" if row.load.requests else "—"  # none finished within the run


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _ratio(row: Row, reference: Row | None) -> str:
    if reference is None or reference.load.requests_per_second <= 0:
        return "—"
    ratio = row.load.requests_per_second / reference.load.requests_per_second
    if ratio >= 10:
        return f"{ratio:.0f}{TIMES}"
    return f"{ratio:.2f}{TIMES}" if ratio >= 0.1 else f"{ratio:.2g}{TIMES}"
