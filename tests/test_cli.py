"""The `threadql` command as an operator runs it, and a real server on a real port."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from db import open_storage
from db.demo import load_demo
from schema import schema
from server import auth
from tests.live import THREADQL, free_port

if TYPE_CHECKING:
    from pathlib import Path


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*THREADQL, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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


async def _with_demo_thread(database_url: str) -> None:
    storage = open_storage(database_url)
    await storage.open()
    try:
        await storage.migrate()
        await load_demo(storage)
    finally:
        await storage.close()


def test_export_counts_what_it_wrote_in_words(tmp_path: Path) -> None:
    env = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    asyncio.run(_with_demo_thread(env["THREADQL_DATABASE_URL"]))
    exported = run(["export", "--thread-key", "demo"], env)
    assert exported.returncode == 0, exported.stderr
    assert len(json.loads(exported.stdout)["threads"]) == 1
    assert exported.stderr == "threadql: exported 28 comments in 1 thread\n"


def test_token_mints_what_the_server_accepts(tmp_path: Path) -> None:
    secret = "a test secret that is long enough for HS256 signing"
    env = {"THREADQL_JWT_SECRET": secret}
    minted = run(["token", "--sub", "mod-1", "--name", "Mo", "--role", "moderator"], env)
    assert minted.returncode == 0, minted.stderr
    claims = auth.decode(minted.stdout.strip(), secret)
    assert claims == auth.Claims(sub="mod-1", name="Mo", avatar=None, role="moderator")
    expired = run(["token", "--sub", "x", "--name", "X", "--expires", "0"], env)
    with pytest.raises(auth.Unauthenticated, match="expired"):
        auth.decode(expired.stdout.strip(), secret)
    generated = run(["token", "--sub", "x", "--name", "X"], {"THREADQL_DATA_DIR": str(tmp_path)})
    kept = (tmp_path / auth.SECRET_FILE).read_text().strip()
    assert auth.decode(generated.stdout.strip(), kept).sub == "x"
    assert (tmp_path / auth.SECRET_FILE).stat().st_mode & 0o077 == 0, "the secret is private"


def test_serve_answers_the_demo_thread_over_real_http(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/served.db",
        "THREADQL_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("THREADQL_JWT_SECRET", None)
    printed = ""
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
        assert server.stdout is not None
        while "Bearer" not in printed:
            printed += server.stdout.readline()
        header = json.loads(printed.strip().splitlines()[-1])
        viewer = httpx.post(f"{url}/graphql", json={"query": "{ viewer { name } }"}, headers=header)
        assert viewer.json() == {"data": {"viewer": {"name": "Demo Reader"}}}
        assert (tmp_path / "data" / auth.SECRET_FILE).exists()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert server.stdout is not None
    output = printed + server.stdout.read()
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output, "the storage was not closed cleanly"
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in output
