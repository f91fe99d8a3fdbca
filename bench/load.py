"""Closed-loop HTTP load: a fixed number of clients, each sending its next request on an answer.

wrk is used when it is installed, since a Python client can cost more CPU than the server it
measures; otherwise an asyncio loop over httpx does the same job.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    from pathlib import Path

CLIENTS = 8
WARMUP_SECONDS = 2.0
REQUEST_TIMEOUT = 30.0


class LoadFailed(RuntimeError):
    """Some requests under load did not succeed."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    requests_per_second: float
    median_ms: float
    p99_ms: float


class LoadGenerator(Protocol):
    name: str

    def run(self, url: str, body: bytes | None, seconds: float) -> LoadResult:
        """Warm up, then load `url` for `seconds`: POST `body` as JSON, or GET when None."""
        ...


def pick_generator(workdir: Path) -> LoadGenerator:
    wrk = shutil.which("wrk")
    return Wrk(wrk, workdir) if wrk else AsyncioHttpx()


class AsyncioHttpx:
    name = f"Python asyncio + httpx {httpx.__version__} ({CLIENTS} keep-alive clients)"

    def run(self, url: str, body: bytes | None, seconds: float) -> LoadResult:
        return asyncio.run(self._run(url, body, seconds))

    async def _run(self, url: str, body: bytes | None, seconds: float) -> LoadResult:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(
            limits=limits, timeout=REQUEST_TIMEOUT, headers=headers
        ) as client:
            await _drive(client, url, body, WARMUP_SECONDS)
            return await _drive(client, url, body, seconds)


async def _drive(
    client: httpx.AsyncClient, url: str, body: bytes | None, seconds: float
) -> LoadResult:
    method = "GET" if body is None else "POST"
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def one_client() -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            response = await client.request(method, url, content=body)
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 200:
                failures.append(f"HTTP {response.status_code}: {response.text[:200]}")

    async with asyncio.TaskGroup() as group:
        for _ in range(CLIENTS):
            group.create_task(one_client())
    elapsed = time.perf_counter() - start
    if failures:
        raise LoadFailed(f"{len(failures)} of {len(latencies)} requests failed: {failures[0]}")
    if len(latencies) < 2:
        raise LoadFailed(f"only {len(latencies)} requests finished in {seconds} s")
    return LoadResult(
        requests=len(latencies),
        requests_per_second=len(latencies) / elapsed,
        median_ms=statistics.median(latencies) * 1000,
        p99_ms=statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000,
    )


class Wrk:
    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.name = f"wrk ({executable}, 1 thread, {CLIENTS} connections)"

    def run(self, url: str, body: bytes | None, seconds: float) -> LoadResult:
        script = self.workdir / "request.lua"
        text = None if body is None else body.decode("utf-8")
        script.write_text(lua_script(text), encoding="utf-8")
        self._wrk(url, script, WARMUP_SECONDS)
        drain(url, body)
        return parse_wrk(self._wrk(url, script, seconds, "--latency"))

    def _wrk(self, url: str, script: Path, seconds: float, *extra: str) -> str:
        duration = f"{max(1, round(seconds))}s"
        command = [self.executable, "-t1", f"-c{CLIENTS}", f"-d{duration}", *extra]
        command += ["--timeout", f"{REQUEST_TIMEOUT:.0f}s", "-s", str(script), url]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=True
        )
        return done.stdout


def drain(url: str, body: bytes | None) -> None:
    """One request, waited for: wrk leaves requests unanswered when it stops, and a server
    working through them (one with a sync worker goes through each in turn) should finish
    before the next run starts, or that run would pay for them."""
    method = "GET" if body is None else "POST"
    headers = {"content-type": "application/json"}
    httpx.request(method, url, content=body, headers=headers, timeout=REQUEST_TIMEOUT * 4)


def lua_script(body: str | None) -> str:
    """A wrk script that POSTs `body`, held in a Lua long string that nothing in it can close;
    or GETs when `body` is None."""
    if body is None:
        return 'wrk.method = "GET"\n'
    level = ""
    while f"]{level}]" in body:
        level += "="
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [{level}[{body}]{level}]\n"
    )


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_PROBLEMS = re.compile(r"^\s*(Non-2xx or 3xx responses: \d+|Socket errors: .*)$", re.MULTILINE)


def parse_wrk(output: str) -> LoadResult:
    """Read the summary of `wrk --latency`; any failed request fails the run."""
    problems = [p for p in _PROBLEMS.findall(output) if not _only_zeros(p)]
    if problems:
        raise LoadFailed(f"wrk reported {'; '.join(problems)}")
    percentiles = {p: float(v) * _UNITS_MS[unit] for p, v, unit in _PERCENTILE.findall(output)}
    requests, rate = _REQUESTS.search(output), _RATE.search(output)
    if requests is None or rate is None or set(percentiles) != {"50", "99"}:
        raise LoadFailed(f"cannot read the wrk summary:\n{output}")
    return LoadResult(
        requests=int(requests.group(1)),
        requests_per_second=float(rate.group(1)),
        median_ms=percentiles["50"],
        p99_ms=percentiles["99"],
    )


def _only_zeros(line: str) -> bool:
    return all(n == "0" for n in re.findall(r"\d+", line.split(":", 1)[1]))
