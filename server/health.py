"""Liveness and readiness: `/healthz` says the process answers, `/readyz` that it can serve
(database answering and migrated, broker reachable), for a load balancer to route by."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from starlette.responses import JSONResponse

from server.redis_broker import RedisBroker

if TYPE_CHECKING:
    from starlette.requests import Request

    from server.broker import Broker

log = logging.getLogger(__name__)

TIMEOUT = 2.0  # seconds the database may take to answer before it counts as down


class Checkable(Protocol):
    async def ping(self) -> None: ...

    async def pending_migrations(self) -> list[str]: ...


async def healthz(request: Request) -> JSONResponse:
    """Alive: the process answers. Readiness of the database is a separate question."""
    return JSONResponse({"status": "ok"})


async def database_check(storage: Checkable) -> dict[str, object]:
    try:
        await asyncio.wait_for(storage.ping(), TIMEOUT)
    except Exception as error:  # any failure to answer means not ready
        log.warning("readiness: the database does not answer: %s", error)
        return {"ok": False, "error": "the database does not answer"}
    try:
        pending = await asyncio.wait_for(storage.pending_migrations(), TIMEOUT)
    except Exception as error:
        log.warning("readiness: migrations could not be read: %s", error)
        return {"ok": False, "error": "the applied migrations could not be read"}
    if pending:
        return {"ok": False, "error": "migrations are pending", "pending": pending}
    return {"ok": True}


def broker_check(broker: Broker) -> dict[str, object]:
    """The memory broker is always there; Redis's is ready while its listener is connected."""
    if isinstance(broker, RedisBroker) and not broker.connected:
        return {"ok": False, "error": "Redis is not connected"}
    return {"ok": True}


async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks = {
        "database": await database_check(state.storage),
        "broker": broker_check(state.broker),
    }
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
