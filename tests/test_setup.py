"""What `make serve` sets up on a fresh machine: the package as pip builds it, and
GraphiQL's files from the npm registry."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from schema import schema
from server import graphiql
from tests import live

if TYPE_CHECKING:
    from starlette.requests import Request

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "resolvers", "db", "server", "bench")
# One of setuptools' build hooks, as pip calls it for `pip install -e .` or `pip wheel .`.
BUILD = """
import sys
import setuptools.build_meta as backend
print("built", getattr(backend, sys.argv[1])(sys.argv[2]))
"""

# A line as the warnings module prints it: "file:line: Category: message".
WARNING = re.compile(r"^\S+:\d+: \w+: .*$", re.MULTILINE)


def shipped_files() -> set[str]:
    """Every file of the packages that the wheel must carry: code and the data beside it."""
    files = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.parent.name != "out":
                files.add(path.relative_to(ROOT).as_posix())
    return files


def build(hook: str, tmp_path: Path) -> tuple[Path, str]:
    """The wheel that `hook` builds from a copy of the project, and what setuptools printed."""
    source = tmp_path / hook
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "out")
        )
    built = subprocess.run(
        [sys.executable, "-W", "default", "-c", BUILD, hook, str(tmp_path / "wheels")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = re.findall(r"^built (.+\.whl)$", built.stdout, re.MULTILINE)
    return tmp_path / "wheels" / wheel, built.stdout + built.stderr


@pytest.mark.processes
def test_the_package_builds_without_a_setuptools_warning(tmp_path: Path) -> None:
    _, output = build("build_editable", tmp_path)
    assert WARNING.findall(output) == []
    wheel, output = build("build_wheel", tmp_path)
    assert WARNING.findall(output) == []
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert in_wheel == shipped_files()


def test_graphiql_pins_exactly_the_files_strawberrys_page_loads() -> None:
    """A Strawberry that moves GraphiQL on fails here, not in a browser with no network."""
    page = GraphQL(schema, graphql_ide="graphiql").graphql_ide_html
    loaded = re.findall(re.escape(graphiql.CDN) + r"([^\"'\s]+)", page)
    assert sorted(loaded) == sorted(graphiql.FILES)
    local = graphiql.local_page(page)
    assert graphiql.CDN not in local
    assert sorted(re.findall(re.escape(graphiql.PATH) + r"([^\"'\s]+)", local)) == sorted(loaded)


def npm_tarball(files: dict[str, bytes]) -> bytes:
    """A package as the npm registry serves it: its files under `package/`, gzipped."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, body in files.items():
            member = tarfile.TarInfo(f"package/{name}")
            member.size = len(body)
            archive.addfile(member, io.BytesIO(body))
    return packed.getvalue()


async def test_graphiql_install_keeps_only_what_the_pinned_hash_vouches_for(
    tmp_path: Path,
) -> None:
    genuine = npm_tarball({"dist/tool.js": b"window.tool = 1;", "README.md": b"# tool"})
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(genuine).digest()).decode()
    package = graphiql.Package("@scope/tool", "1.0.0", integrity, ("dist/tool.js",))
    published = {"tarball": npm_tarball({"dist/tool.js": b"window.tool = 'tampered';"})}
    requested: list[str] = []

    async def registry(request: Request) -> Response:
        requested.append(request.url.path)
        return Response(published["tarball"], media_type="application/octet-stream")

    folder = tmp_path / "graphiql"
    app = Starlette(routes=[Route("/{path:path}", registry)])
    async with live.serving(app) as url:

        def install() -> list[str]:
            return graphiql.install(folder, url, [package])

        with pytest.raises(graphiql.InstallError, match="not the pinned"):
            await asyncio.to_thread(install)
        assert not folder.exists(), "nothing of a tarball that fails its hash is kept"
        assert requested == ["/@scope/tool/-/tool-1.0.0.tgz"]

        published["tarball"] = genuine
        assert await asyncio.to_thread(install) == ["@scope/tool@1.0.0"]
        kept = folder / "@scope" / "tool@1.0.0"
        assert (kept / "dist" / "tool.js").read_bytes() == b"window.tool = 1;"
        assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["tool.js"]
        assert await asyncio.to_thread(install) == [], "an installed package is not fetched again"
        assert len(requested) == 2


def test_graphiql_not_installed_says_how_to_install_it(tmp_path: Path) -> None:
    assert graphiql.not_installed() is None, "`make` installs them into this environment"
    answer = graphiql.not_installed(tmp_path)
    assert answer is not None
    assert answer.status_code == 503
    assert (
        bytes(answer.body).decode().startswith(f"GraphiQL's files are not installed in {tmp_path}")
    )
    assert b"python -m server.graphiql" in bytes(answer.body)
