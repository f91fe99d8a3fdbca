"""What threadql serves to browsers besides GraphQL: /embed.js, the demo page and its assets.

`page_routes(settings, secret)` gives the routes; `GraphQLCORS` lets pages of other sites
call /graphql, which the embed does wherever it is embedded.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from db.demo import DEMO_KEY
from server import auth

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from starlette.requests import Request
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

    from server.settings import Settings

# The embed's URL carries no version, so browsers keep it briefly and then revalidate by ETag.
ASSET_CACHE = "public, max-age=600, stale-while-revalidate=86400"
# A script or stylesheet needs nothing of a page's own.
ASSET_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The demo page: its own script and stylesheet, /graphql over HTTP and WebSocket, avatars.
# The embed's styles are constructed stylesheets, which style-src does not govern.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DEMO_TOKEN_LIFETIME = 24 * 3600  # seconds

_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Asset:
    """A file served as it is (of server/static, or GraphiQL's), read once, with its gzip form
    and a strong ETag."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def load(cls, name: str) -> Asset:
        return cls.of(resources.files("server").joinpath("static", name).read_bytes(), name)

    @classmethod
    def read(cls, path: Path) -> Asset:
        return cls.of(path.read_bytes(), path.name)

    @classmethod
    def of(cls, body: bytes, name: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:20]
        media_type = _MEDIA_TYPES[name[name.rindex(".") :]]
        return cls(body, gzip.compress(body, mtime=0), media_type, f'"{digest}"')

    async def respond(self, request: Request) -> Response:
        compressed = "gzip" in request.headers.get("accept-encoding", "").lower()
        etag = self.etag[:-1] + '-gz"' if compressed else self.etag
        headers = {
            "ETag": etag,
            "Cache-Control": ASSET_CACHE,
            "Vary": "Accept-Encoding",
            "Content-Security-Policy": ASSET_POLICY,
            "X-Content-Type-Options": "nosniff",
            # Loaded by pages of other sites, with or without `crossorigin` and SRI.
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if compressed:
            headers["Content-Encoding"] = "gzip"
        body = self.gzipped if compressed else self.body
        return Response(body, media_type=self.media_type, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title} · threadql</title>
<link rel="icon" href="/avatars/thread%20ql.svg">
<link rel="stylesheet" href="/static/demo.css">
</head>
<body>
<header class="site"><a href="/">threadql</a><span>comments over GraphQL</span>\
<a href="/graphql">GraphiQL</a></header>
<main>
<article>
<p class="kicker">Demo article</p>
<h1>{title}</h1>
<p class="byline">A page of any site, with the comment section under it</p>
<p>The psoas runs from the lower spine, through the pelvis, to the top of the thigh bone:
the only muscle that joins the trunk to the legs. It bends the hip, steadies the lower back
and tightens when we brace ourselves, which is why it comes up whenever people talk about
posture, long days at a desk and the way the body holds on to stress.</p>
<p>Below is this article's comment thread, served by threadql. The page loads it with one
script tag, the same <code>/embed.js</code> any site can add; the script asks the public
GraphQL API for the thread and listens for new comments over a WebSocket.</p>
</article>
{account}
<section class="comments" aria-label="Comments">
<div id="thread" data-threadql-thread="{key}"></div>
</section>
</main>
<script src="/static/demo.js"></script>
<script src="/embed.js" async></script>
</body>
</html>
"""

ACCOUNT = """<div class="account" id="account">
<p id="who" role="status">Reading as a guest.</p>
<button type="button" id="sign-in">Sign in as a demo user</button>
<button type="button" id="sign-out" hidden>Sign out</button>
</div>"""

NO_ACCOUNT = """<div class="account"><p>Signing in is for the host site to arrange: \
see the README's Authentication section.</p></div>"""


def page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": PAGE_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }


async def demo_page(request: Request) -> HTMLResponse:
    """An article with the demo thread under it, embedded the way any site embeds one."""
    settings: Settings = request.app.state.settings
    [thread] = await request.app.state.storage.threads_by_keys([DEMO_KEY])
    title = thread.title if thread is not None else "A page with comments"
    account = ACCOUNT if settings.env == "development" else NO_ACCOUNT
    body = PAGE.format(title=html.escape(title), key=html.escape(DEMO_KEY), account=account)
    return HTMLResponse(body, headers=page_headers())


ADJECTIVES = (
    "Curious", "Patient", "Quiet", "Cheerful", "Thoughtful", "Early", "Gentle", "Bold",
    "Careful", "Sunny", "Restless", "Kind",
)  # fmt: skip
ANIMALS = (
    "Heron", "Otter", "Badger", "Wren", "Lynx", "Marten", "Plover", "Hare", "Finch",
    "Newt", "Stoat", "Kestrel",
)  # fmt: skip


def demo_token(secret: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    """`POST /demo/token`: a day's token for a new demo reader with a made-up name."""

    async def mint_token(request: Request) -> JSONResponse:
        name = f"{secrets.choice(ADJECTIVES)} {secrets.choice(ANIMALS)}"
        sub = f"demo-reader:{secrets.token_hex(8)}"
        token = auth.mint(secret, sub=sub, name=name, expires_in=DEMO_TOKEN_LIFETIME)
        return JSONResponse(
            {"token": token, "name": name, "expiresIn": DEMO_TOKEN_LIFETIME},
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    return mint_token


def page_routes(settings: Settings, secret: str) -> list[BaseRoute]:
    """/embed.js, the demo page at / and its assets; `POST /demo/token` in development only."""
    routes: list[BaseRoute] = [
        Route("/", demo_page, methods=["GET"]),
        Route("/embed.js", Asset.load("embed.js").respond, methods=["GET"]),
        Route("/static/demo.js", Asset.load("demo.js").respond, methods=["GET"]),
        Route("/static/demo.css", Asset.load("demo.css").respond, methods=["GET"]),
    ]
    if settings.env == "development":
        routes.append(Route("/demo/token", demo_token(secret), methods=["POST"]))
    return routes


class GraphQLCORS:
    """Cross-origin access to /graphql for pages of any site, which is where the embed runs.

    Readers are signed in by a bearer token that the host page hands over, never by
    cookies, so any origin may call and no credentials are allowed. Other paths are
    left alone: /demo/token stays same-origin.
    """

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "accept"],
            expose_headers=["x-request-id", "retry-after"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
