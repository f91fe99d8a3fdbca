"""The `threadql` command as an operator runs it, and a real server on a real port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx

from schema import schema

if TYPE_CHECKING:
    from pathlib import Path

THREADQL = [sys.executable, "-c", "from server.cli import main; main()"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*THREADQL, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_migrate_then_nothing_to_do(tmp_path: Path) -> None:
    env = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    first = run(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_initial.sql" in first.stdout
    again = run(["migrate"], env)
    assert again.stdout.strip() == "the database is up to date"


def test_export_schema(tmp_path: Path) -> None:
    printed = run(["export-schema"], {})
    assert printed.stdout == schema.as_str() + "\n"
    written = run(["export-schema", "--output", str(tmp_path / "s.graphql")], {})
    assert written.returncode == 0
    assert (tmp_path / "s.graphql").read_text() == printed.stdout


def test_a_bad_setting_stops_with_its_name(tmp_path: Path) -> None:
    result = run(["migrate"], {"THREADQL_DATABASE_URL": "oracle://x"})
    assert result.returncode == 2
    assert "THREADQL_DATABASE_URL" in result.stderr
    result = run(["serve"], {"THREADQL_PORT": "eighty"})
    assert result.returncode == 2
    assert "THREADQL_PORT" in result.stderr


def test_serve_answers_the_demo_thread_over_real_http(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/served.db"}
    server = subprocess.Popen(
        [*THREADQL, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        response = httpx.post(
            f"{url}/graphql", json={"query": '{ thread(key: "demo") { commentCount } }'}
        )
        assert response.json() == {"data": {"thread": {"commentCount": 28}}}
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output, "the storage was not closed cleanly"
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in output
