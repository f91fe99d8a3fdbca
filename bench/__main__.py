"""`python -m bench`: statements per request, query plans, HTTP throughput, writes and live
delivery, on SQLite and on PostgreSQL, then delivery across two processes through Redis;
beside Isso (installed from PyPI into a virtualenv of its own) and a bare Starlette floor.

PostgreSQL, Redis or Isso, when it cannot be used, is skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from bench import delivery, report, summary
from bench.backend import Backend, Results, Setup, measure, prepare
from bench.chart import write_chart
from bench.crossprocess import LABEL as W6_LABEL
from bench.dataset import sqlite_url
from bench.floor import measure_floor
from bench.isso import Installed, PeerUnavailable, measure_isso
from bench.isso import install as install_isso
from bench.load import pick_generator
from bench.memory import can_reset_peaks
from bench.posting import new_secret
from bench.queries import ALL_WORKLOADS, W1, WORKLOADS
from bench.services import (
    POSTGRES_ADMIN,
    REDIS,
    Unavailable,
    postgres_version,
    redis_version,
    throwaway_database,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.rows import Row

OUT = Path(__file__).parent / "out"
CHART = Path(__file__).parent.parent / "docs" / "bench.png"
SECONDS, QUICK_SECONDS = 10.0, 3.0
POSTGRES_ROWS = "the PostgreSQL rows"
REDIS_ROWS = f"the {W6_LABEL.split()[0]} rows"
ISSO_ROWS = "the Isso rows"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"load duration per workload (default {SECONDS:g}, or {QUICK_SECONDS:g} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: shorter loads, no W3 (and no 100,000-comment thread to build),"
        " W5 and W6 with 1 and 100 subscribers only",
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN,
        help=f"a database to connect to while creating and dropping the bench's own"
        f" (default {POSTGRES_ADMIN})",
    )
    parser.add_argument("--redis", default=REDIS, help=f"Redis for W6 (default {REDIS})")
    args = parser.parse_args()
    quick: bool = args.quick
    seconds: float = (QUICK_SECONDS if quick else SECONDS) if args.seconds is None else args.seconds
    if seconds <= 0:
        parser.error("--seconds must be positive")

    started = time.monotonic()
    services = [f"SQLite {sqlite3.sqlite_version}"]
    skips: list[str] = []
    postgres = _check(postgres_version, args.postgres, POSTGRES_ROWS, services, skips)
    redis = _check(redis_version, args.redis, REDIS_ROWS, services, skips)

    results: list[Results] = []
    others: list[Row] = []  # the floor's and Isso's
    isso: Installed | None = None
    with (
        tempfile.TemporaryDirectory(prefix="threadql-bench-") as tmp,
        ThreadPoolExecutor(max_workers=1) as background,
    ):
        workdir = Path(tmp)
        delivery.raise_open_file_limit()  # before any server starts, so that each inherits it
        runs = delivery.QUICK_RUNS if quick else delivery.RUNS
        setup = Setup(workdir, pick_generator(workdir), new_secret(), seconds, redis, runs)
        database = workdir / "bench.db"
        sqlite = Backend("SQLite", sqlite_url(database), "sqlite")
        print("Isso: installing into a virtualenv of its own, meanwhile …", flush=True)
        installing = background.submit(install_isso, workdir / "isso")
        prepared = prepare(sqlite, WORKLOADS, WORKLOADS if quick else ALL_WORKLOADS)
        isso = _installed(installing, skips)  # before any load, which it would disturb
        results.append(measure(prepared, setup, local_delivery=True))
        w1 = prepared.default.counted_for(W1)
        others.append(measure_floor(setup, w1.answer, w1.comments))
        if isso is not None:
            try:
                others += measure_isso(setup, isso, database)
            except Exception as error:  # the peer's failure must not end the bench
                _skip(ISSO_ROWS, error, skips)
                isso = None
        if postgres is not None:
            try:
                with throwaway_database(postgres) as url:
                    backend = Backend("PostgreSQL", url, "postgresql")
                    postgresql = prepare(backend, WORKLOADS, WORKLOADS if quick else ALL_WORKLOADS)
                    results.append(measure(postgresql, setup, local_delivery=False))
            except Unavailable as error:
                _skip(POSTGRES_ROWS, error, skips)

    rows = summary.sorted_rows([row for r in results for row in r.rows] + others)
    context = summary.Context(
        generator=setup.generator.name,
        seconds=seconds,
        services=", ".join(services),
        isso=None if isso is None else isso.version,
        floor_bytes=len(w1.answer),
        memory_per_workload=can_reset_peaks(),
    )
    tables = _tables(rows, results, context, skips)
    print(f"\n{tables}", end="")
    OUT.mkdir(exist_ok=True)
    (OUT / "results.md").write_text(tables, encoding="utf-8")
    write_chart(rows, CHART, summary.chart_note(rows))
    print(f"\nWrote {OUT / 'results.md'} and {CHART}.")
    print(f"The bench took {time.monotonic() - started:.0f} s.")


def _check(
    version: Callable[[str], str], url: str, rows: str, services: list[str], skips: list[str]
) -> str | None:
    """`url` if its service answers, noting its version; otherwise None, noting why."""
    try:
        services.append(version(url))
    except Unavailable as error:
        _skip(rows, error, skips)
        return None
    return url


def _installed(installing: Future[Installed], skips: list[str]) -> Installed | None:
    """Isso once installed; None, with the reason noted, if it could not be."""
    try:
        installed = installing.result()
    except Exception as error:  # the peer's failure must not end the bench
        _skip(ISSO_ROWS, error, skips)
        return None
    print(f"Isso {installed.version} is installed.", flush=True)
    return installed


def _skip(rows: str, error: Exception, skips: list[str]) -> None:
    known = isinstance(error, (Unavailable, PeerUnavailable))
    reason = str(error) if known else f"{type(error).__name__}: {error}"
    skips.append(f"{rows}: {reason}")
    print(f"Skipping {rows}: {reason}", flush=True)


def _tables(
    rows: list[Row], results: list[Results], context: summary.Context, skips: list[str]
) -> str:
    writes = [report.Writes(r.backend, r.writes, r.writes_row.peak_mib) for r in results]
    deliveries = [
        report.Deliveries(report.W5_LABEL, r.backend, r.local) for r in results if r.local
    ] + [report.Deliveries(W6_LABEL, r.backend, r.cross) for r in results if r.cross]
    return (
        summary.main_table(rows, context)
        + "\n"
        + report.writes_and_delivery(writes, deliveries)
        + ("\n" + report.skipped(skips) if skips else "")
    )


if __name__ == "__main__":
    main()
