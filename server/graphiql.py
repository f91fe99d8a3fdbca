"""GraphiQL's files, served by threadql itself so that /graphql works with no network.

Strawberry's GraphiQL page loads React, GraphiQL and its explorer plugin from unpkg.com.
The same files, as the npm registry publishes them, are fetched once at set-up (`make serve`
runs `python -m server.graphiql`), checked against the integrity hashes pinned below, and
kept in this environment (`<venv>/share/threadql/graphiql`, never in git). The page is
rewritten to load them from /graphiql/…, under a policy that allows nothing but the server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import PlainTextResponse
from starlette.routing import Route

from server.pages import Asset

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.requests import Request
    from starlette.responses import Response

REGISTRY = "https://registry.npmjs.org"
CDN = "https://unpkg.com/"  # where Strawberry's page loads them from
PATH = "/graphiql/"  # where threadql serves them
DIRECTORY = Path(sys.prefix) / "share" / "threadql" / "graphiql"
INSTALL = "python -m server.graphiql"
TIMEOUT = 60  # seconds for each download


@dataclass(frozen=True, slots=True)
class Package:
    """An npm package of which the page loads `files`, pinned by the registry's integrity
    hash of its tarball (`dist.integrity`)."""

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        """`name@version`, as in the CDN's URLs and the folders they are kept in."""
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name}/-/{self.name.rpartition('/')[2]}-{self.version}.tgz"


# What Strawberry's graphiql.html loads, at the versions it names.
PACKAGES = (
    Package(
        "react",
        "18.2.0",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        ("umd/react.production.min.js",),
    ),
    Package(
        "react-dom",
        "18.2.0",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        ("umd/react-dom.production.min.js",),
    ),
    Package(
        "js-cookie",
        "3.0.5",
        "sha512-cEiJEAEoIbWfCZYKWhVwFuvPX1gETRYPw6LlaTKoxD3s2AkXzkCjnp6h0V77ozyqj0jakteJ4YqDJT830+lVGw==",
        ("dist/js.cookie.min.js",),
    ),
    Package(
        "graphiql",
        "3.8.3",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        ("graphiql.min.css", "graphiql.min.js"),
    ),
    Package(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
        ("dist/style.css", "dist/index.umd.js"),
    ),
)
# Each file by the path it is served at, below PATH: `graphiql@3.8.3/graphiql.min.js`.
FILES = {f"{package.folder}/{file}": package for package in PACKAGES for file in package.files}
_CDN_URL = re.compile(re.escape(CDN) + r"[^\"'\s]+")


class InstallError(Exception):
    """A package could not be fetched, or is not what its pinned hash says."""


def local_page(page: str) -> str:
    """Strawberry's GraphiQL page, loading every file from threadql instead of the CDN. A
    file it loads that is not pinned here (a Strawberry that moved GraphiQL on) is an
    error, never a request to the CDN."""

    def local(match: re.Match[str]) -> str:
        path = match.group().removeprefix(CDN)
        if path not in FILES:
            raise ValueError(
                f"Strawberry's GraphiQL page loads {match.group()}, which server/graphiql.py"
                " does not pin: add its package to PACKAGES"
            )
        return PATH + path

    return _CDN_URL.sub(local, page)


def missing(directory: Path = DIRECTORY) -> list[str]:
    """The files not installed in `directory`, by the path they are served at."""
    return [path for path in FILES if not (directory / path).is_file()]


def not_installed(directory: Path = DIRECTORY) -> Response | None:
    """What /graphql answers a browser when GraphiQL's files are not there: how to get them."""
    absent = missing(directory)
    if not absent:
        return None
    return PlainTextResponse(
        f"GraphiQL's files are not installed in {directory} (missing: {', '.join(absent)}).\n"
        f"`make serve` installs them; or run `{INSTALL}` with this environment's Python.\n",
        status_code=503,
    )


def install(
    directory: Path = DIRECTORY,
    registry: str = REGISTRY,
    packages: Sequence[Package] = PACKAGES,
) -> list[str]:
    """Fetch each package that is not complete in `directory`, check it against its pinned
    hash, and keep the files the page loads; the packages installed now, by folder."""
    installed = []
    for package in packages:
        if all((directory / package.folder / file).is_file() for file in package.files):
            continue
        tarball = _download(f"{registry}/{package.tarball}")
        _check(package, tarball)
        _unpack(package, tarball, directory)
        installed.append(package.folder)
    return installed


def _download(url: str) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise InstallError(f"{url} is not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 - checked above
            body: bytes = response.read()
    except OSError as error:
        raise InstallError(f"{url} could not be fetched: {error}") from error
    return body


def _check(package: Package, tarball: bytes) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise InstallError(
            f"{package.folder}: the tarball's {algorithm} is {digest}, not the pinned"
            f" {expected}; nothing of it was installed"
        )


def _unpack(package: Package, tarball: bytes, directory: Path) -> None:
    """The page's files of the package, written into a folder of their own that then takes
    the package's place whole: an interrupted install leaves no half package."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=directory))
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for file in package.files:
                member = archive.extractfile(f"package/{file}")
                if member is None:
                    raise InstallError(f"{package.folder} has no file {file}")
                target = staging / file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
        final = directory / package.folder
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def route(directory: Path = DIRECTORY) -> Route:
    """GET /graphiql/<package>@<version>/<file>: the pinned files, read once when first asked."""
    assets: dict[str, Asset] = {}

    async def serve_file(request: Request) -> Response:
        path = request.path_params["path"]
        if path not in FILES:
            return PlainTextResponse("Not Found", status_code=404)
        asset = assets.get(path)
        if asset is None:
            file = directory / path
            if not file.is_file():
                return PlainTextResponse(f"{path} is not installed: run `{INSTALL}`", 404)
            asset = assets[path] = await asyncio.to_thread(Asset.read, file)
        return await asset.respond(request)

    return Route(PATH + "{path:path}", serve_file, methods=["GET"])


def main() -> None:
    try:
        installed = install()
    except InstallError as error:
        sys.exit(f"threadql: GraphiQL: {error}")
    if installed:
        print(f"threadql: GraphiQL's files installed in {DIRECTORY}: {', '.join(installed)}")


if __name__ == "__main__":
    main()
