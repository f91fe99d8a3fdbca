"""W6: subscribers on one `threadql serve` process, comments posted to another, so that every
event travels from process A through Redis to process B."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import ExitStack
from typing import TYPE_CHECKING

from bench.delivery import measure_delivery
from bench.memory import ServerMemory
from bench.server import running_server

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from bench.delivery import DeliveryResult, Run

LABEL = "W6 delivery via Redis, post to A, subscribe on B"


def broker_prefix() -> str:
    """A THREADQL_BROKER_PREFIX of this run's own, so that no other process hears its events."""
    return f"threadql-bench-{secrets.token_hex(6)}:"


def measure_cross_process(
    database_url: str,
    redis_url: str,
    secret: str,
    env: Mapping[str, str],
    logs: Path,
    runs: Sequence[Run],
) -> list[DeliveryResult]:
    """Start processes A and B on one database and one Redis; both stop however this ends.

    `logs` is a directory; `env` holds the settings both processes share. The peak memory
    of each run is A's, then B's.
    """
    shared = {
        **env,
        "THREADQL_JWT_SECRET": secret,
        "THREADQL_BROKER_URL": redis_url,
        "THREADQL_BROKER_PREFIX": broker_prefix(),
    }
    with ExitStack() as stack:
        post_to = stack.enter_context(running_server(database_url, logs / "a.log", shared))
        subscribe_on = stack.enter_context(running_server(database_url, logs / "b.log", shared))
        return asyncio.run(
            measure_delivery(
                f"{post_to.base_url}/graphql",
                secret,
                subscribe_url=f"{subscribe_on.base_url}/graphql",
                label="W6",
                runs=runs,
                memories=[ServerMemory(post_to.pid), ServerMemory(subscribe_on.pid)],
            )
        )
