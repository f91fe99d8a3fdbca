"""`python -m bench`: statements per request, query plans, HTTP throughput, writes and live
delivery, on SQLite and on PostgreSQL, then delivery across two processes through Redis.

PostgreSQL or Redis, when it cannot be used, is skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import delivery, report
from bench.backend import Backend, Results, Setup, measure
from bench.crossprocess import LABEL as W6_LABEL
from bench.dataset import sqlite_url
from bench.load import pick_generator
from bench.posting import new_secret
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

OUT = Path(__file__).parent / "out"
POSTGRES_ROWS = "the PostgreSQL rows"
REDIS_ROWS = f"the {W6_LABEL.split()[0]} rows"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="load duration per workload (default 10)"
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN,
        help=f"a database to connect to while creating and dropping the bench's own"
        f" (default {POSTGRES_ADMIN})",
    )
    parser.add_argument("--redis", default=REDIS, help=f"Redis for W6 (default {REDIS})")
    args = parser.parse_args()
    seconds: float = args.seconds
    if seconds <= 0:
        parser.error("--seconds must be positive")

    started = time.monotonic()
    services = [f"SQLite {sqlite3.sqlite_version}"]
    skips: list[str] = []
    postgres = _check(postgres_version, args.postgres, POSTGRES_ROWS, services, skips)
    redis = _check(redis_version, args.redis, REDIS_ROWS, services, skips)

    results: list[Results] = []
    with tempfile.TemporaryDirectory(prefix="threadql-bench-") as tmp:
        workdir = Path(tmp)
        delivery.raise_open_file_limit()  # before any server starts, so that each inherits it
        setup = Setup(workdir, pick_generator(workdir), new_secret(), seconds, redis)
        sqlite = Backend("SQLite", sqlite_url(workdir / "bench.db"), "sqlite")
        results.append(measure(sqlite, setup, local_delivery=True))
        if postgres is not None:
            try:
                with throwaway_database(postgres) as url:
                    postgresql = Backend("PostgreSQL", url, "postgresql")
                    results.append(measure(postgresql, setup, local_delivery=False))
            except Unavailable as error:
                _skip(POSTGRES_ROWS, error, skips)

    tables = _tables(results, setup.generator.name, seconds, ", ".join(services), skips)
    print(f"\n{tables}", end="")
    OUT.mkdir(exist_ok=True)
    (OUT / "results.md").write_text(tables, encoding="utf-8")
    print(f"\nThe bench took {time.monotonic() - started:.0f} s.")


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


def _skip(rows: str, error: Unavailable, skips: list[str]) -> None:
    skips.append(f"{rows}: {error}")
    print(f"Skipping {rows}: {error}", flush=True)


def _tables(
    results: list[Results], generator: str, seconds: float, services: str, skips: list[str]
) -> str:
    reads = [row for r in results for row in r.reads]
    writes = [(r.backend, r.writes) for r in results]
    deliveries = [
        report.Deliveries(report.W5_LABEL, r.backend, r.local) for r in results if r.local
    ] + [report.Deliveries(W6_LABEL, r.backend, r.cross) for r in results if r.cross]
    return (
        report.markdown(reads, generator, seconds, services)
        + "\n"
        + report.writes_and_delivery(writes, deliveries)
        + ("\n" + report.skipped(skips) if skips else "")
    )


if __name__ == "__main__":
    main()
