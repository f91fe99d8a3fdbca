"""The results as Markdown tables, for the terminal and for bench/out/results.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from websockets.version import version as websockets_version

from bench.delivery import CONNECT_CONCURRENCY, SUBSCRIBER_QUEUE
from bench.load import WARMUP_SECONDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.delivery import DeliveryResult
    from bench.writes import WriteResult

W4_LABEL = "W4 addComment, comments and replies"
W5_LABEL = "W5 commentAdded delivery"


@dataclass(frozen=True)
class Writes:
    backend: str
    result: WriteResult
    peak_mib: float  # of the server during W4


@dataclass(frozen=True)
class Deliveries:
    """One workload's delivery runs on one backend, 1 to 1,000 subscribers."""

    workload: str
    backend: str
    results: Sequence[DeliveryResult]


def writes_and_delivery(writes: Sequence[Writes], deliveries: Sequence[Deliveries]) -> str:
    """W4, W5 and W6: the second table."""
    lines = [
        "| workload | backend | connections | comments timed | median ms | p99 ms"
        " | addComment median ms | comments/s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {W4_LABEL} | {w.backend} | {r.writers} writers | {r.comments} | {r.median_ms:.2f}"
        f" | {r.p99_ms:.2f} | {r.median_ms:.2f} | {r.comments_per_second:.1f}"
        f" | {w.peak_mib:.0f} |"
        for w in writes
        for r in (w.result,)
    ]
    lines += [
        f"| {group.workload} | {group.backend}"
        f" | {d.subscribers:,} subscriber{'s' * (d.subscribers > 1)} | {d.comments}"
        f" | {d.median_ms:.2f} | {d.p99_ms:.2f} | {d.mutation_median_ms:.2f} |"
        f" | {_peaks(d.peak_mib)} |"
        for group in deliveries
        for d in group.results
    ]
    lines += ["", _writes_note(writes)]
    local = [g for g in deliveries if g.workload == W5_LABEL]
    cross = [g for g in deliveries if g.workload != W5_LABEL]
    if local:
        lines += ["", _local_note(local)]
    if cross:
        lines += ["", _cross_note(cross)]
    return "\n".join(lines) + "\n"


def skipped(reasons: Sequence[str]) -> str:
    """Rows left out, and why."""
    return "".join(f"Skipped: {reason}\n" for reason in reasons)


def _writes_note(writes: Sequence[Writes]) -> str:
    w = writes[0].result
    counts = "; ".join(
        f"on {backend} from {r.count_before} to {r.count_after}, by the"
        f" {r.count_after - r.count_before} comments acknowledged ({r.warmup_comments} in the"
        " warm-up)"
        for backend, r in ((w.backend, w.result) for w in writes)
    )
    return (
        f"W4: median and p99 of the addComment round trip. {w.writers} writers, each signed in"
        " as its own user on its own keep-alive connection, posted for"
        f" {w.seconds:g} s after a {WARMUP_SECONDS:g} s warm-up: about a third top-level comments,"
        f" the rest replies to the writer's own earlier comments. The demo thread's commentCount"
        f" rose {counts}; no response held an error."
    )


def _local_note(groups: Sequence[Deliveries]) -> str:
    return (
        "W5: median and p99 from sending addComment to a subscriber receiving the event, over"
        f" every subscriber and comment (deliveries: {_deliveries(groups)}). Anonymous"
        " commentAdded subscribers on the demo thread, connected"
        f" {CONNECT_CONCURRENCY} at a time ({_connect_times(groups)}); top-level comments posted"
        " one at a time, each once every subscriber had the one before; every subscriber"
        f" received every comment exactly once. THREADQL_SUBSCRIBER_QUEUE={SUBSCRIBER_QUEUE}."
        f" One Python process (asyncio, websockets {websockets_version}) reads every socket, so"
        " its own reading time is in the figures."
    )


def _cross_note(groups: Sequence[Deliveries]) -> str:
    return (
        "W6: measured as W5, but across two `threadql serve` processes, A and B, on the same"
        " database (the same SQLite file, or the same PostgreSQL database) with"
        " THREADQL_BROKER_URL=redis://… and a THREADQL_BROKER_PREFIX of the run's own:"
        " subscribers connected to B, comments posted to A, so every event went from A through"
        f" Redis to B (deliveries: {_deliveries(groups)}; connecting {_connect_times(groups)})."
        " Every subscriber received every comment exactly once. Peak RSS: A's / B's."
    )


def _peaks(peaks: Sequence[float]) -> str:
    return " / ".join(f"{mib:.0f}" for mib in peaks)


def _deliveries(groups: Sequence[Deliveries]) -> str:
    return "; ".join(
        f"{', '.join(f'{d.deliveries:,}' for d in g.results)} on {g.backend}" for g in groups
    )


def _connect_times(groups: Sequence[Deliveries]) -> str:
    parts = []
    for g in groups:
        biggest = max(g.results, key=lambda d: d.subscribers)
        parts.append(f"{biggest.subscribers:,} in {biggest.connect_seconds:.1f} s on {g.backend}")
    return ", ".join(parts)
