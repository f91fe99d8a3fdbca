"""The embed and the demo page: headless Chromium against a real server, and their HTTP answers.

The browser tests need Debian's chromium at /usr/bin/chromium (`apt-get install chromium`);
without it they are skipped, except in CI, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from db.demo import fixture
from db.render import render_html, render_text
from server import auth
from server.app import create_app
from server.graphql import GraphQLView
from server.pages import GraphQLCORS, page_routes
from server.settings import Settings
from tests import live
from tests.services import unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from playwright.async_api import Route as BrowserRoute
    from starlette.requests import Request

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = "a browser test secret that is long enough for HS256"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "demo-page.png"
CLIP = 280  # the embed's excerpt length
SESSION_KEY = "threadql-demo-session"  # where the demo page keeps its sign-in

ADD = """mutation ($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } errors { code message } }
}"""
LOCK = """mutation ($input: LockThreadInput!) {
  lockThread(input: $input) { thread { locked } errors { message } }
}"""


def wired_app(settings: Settings) -> Starlette:
    """The app as server/app.py builds it, with what the embed needs added where it is not
    there yet: the page routes, CORS on /graphql and WebSockets from any origin. The tests
    pass before and after the wiring."""
    app = create_app(settings)
    if not any(getattr(route, "path", None) == "/embed.js" for route in app.router.routes):
        app.router.routes.extend(page_routes(settings, SECRET))
    if not any(getattr(m, "cls", None) is GraphQLCORS for m in app.user_middleware):
        app.add_middleware(GraphQLCORS)
    for route in app.router.routes:
        view = getattr(route, "app", None)
        if isinstance(view, GraphQLView) and "*" not in view.allowed_origins:
            view.allowed_origins = frozenset({"*"})
    return app


def settings_for(tmp_path: Path, env: str = "development") -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path}/threadql.db",
        data_dir=str(tmp_path),
        jwt_secret=SECRET,
        rate_limits=False,
        env=env,
    )


def demo_tree() -> list[tuple[str, int]]:
    """(author, depth) of every demo comment, depth first, oldest first at every level."""
    comments = fixture()["comments"]
    children: dict[int | None, list[int]] = {}
    for index, comment in enumerate(comments):
        children.setdefault(comment["parent"], []).append(index)
    shown: list[tuple[str, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for index in sorted(children.get(parent, []), key=lambda i: comments[i]["createdAt"]):
            shown.append((comments[index]["author"], depth))
            walk(index, depth + 1)

    walk(None, 0)
    return shown


def flat_text(body: str) -> str:
    return " ".join(render_text(render_html(body)).split())


# ---- HTTP: no browser needed


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = wired_app(settings_for(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as c:
            yield c


async def test_embed_js_is_small_typed_cached_and_revalidated(http: httpx.AsyncClient) -> None:
    response = await http.get("/embed.js", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "max-age=" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    zipped_size = int(
        (await http.get("/embed.js", headers={"accept-encoding": "gzip"})).headers["content-length"]
    )
    for document in (ROOT / "README.md", ROOT / "docs" / "embed.md"):
        text = " ".join(document.read_text(encoding="utf-8").split())
        stated = re.search(r"plain JavaScript of about (\d+) kB \(about (\d+) kB gzipped\)", text)
        assert stated, f"{document.name} states the embed's size"
        assert round(len(response.content) / 1000) == int(stated[1]), document.name
        assert round(zipped_size / 1000) == int(stated[2]), document.name
    assert b"innerHTML = node.bodyHtml" in response.content  # the only HTML it writes

    again = await http.get(
        "/embed.js",
        headers={"if-none-match": response.headers["etag"], "accept-encoding": "identity"},
    )
    assert again.status_code == 304
    assert again.content == b""

    zipped = await http.get("/embed.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == response.content  # httpx decodes it
    assert zipped.headers["etag"] != response.headers["etag"]


async def test_the_demo_page_is_html_under_a_strict_policy(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        "connect-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert "<h1>The psoas: the muscle that keeps the score</h1>" in response.text
    assert 'data-threadql-thread="demo"' in response.text
    assert "Sign in as a demo user" in response.text
    for asset in ("/static/demo.js", "/static/demo.css"):
        assert (await http.get(asset)).status_code == 200


async def test_demo_tokens_sign_in_a_new_demo_reader_in_development(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/demo/token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = auth.decode(body["token"], SECRET)
    assert claims.name == body["name"]
    assert claims.sub.startswith("demo-reader:")
    assert (await http.get("/demo/token")).status_code == 405
    other = (await http.post("/demo/token")).json()
    assert auth.decode(other["token"], SECRET).sub != claims.sub


async def test_production_has_no_demo_token_route(tmp_path: Path) -> None:
    app = wired_app(settings_for(tmp_path, env="production"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as c:
            assert (await c.post("/demo/token")).status_code == 404
            page = await c.get("/")
            assert page.status_code == 200
            assert "Sign in as a demo user" not in page.text
            assert (await c.get("/embed.js")).status_code == 200


async def test_graphql_answers_other_origins_without_credentials(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/graphql",
        headers={
            "origin": "https://blog.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    query = await http.post(
        "/graphql",
        json={"query": '{ thread(key: "demo") { commentCount } }'},
        headers={"origin": "https://blog.example"},
    )
    assert query.headers["access-control-allow-origin"] == "*"
    token = await http.post("/demo/token", headers={"origin": "https://blog.example"})
    assert "access-control-allow-origin" not in token.headers


# ---- In the browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        unavailable(
            "Chromium", FileNotFoundError(f"{CHROMIUM} is not installed: apt-get install chromium")
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[live.LiveServer]:
    monkeypatch.setattr(live, "create_app", wired_app)
    async with live.live_server(settings_for(tmp_path)) as running:
        yield running


class Tab:
    """A page in a browser context of its own; it records what the console complains of,
    a Content-Security-Policy violation among it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.problems.append(str(error)))

    def assert_clean(self) -> None:
        assert self.problems == []


async def open_tab(
    browser: Browser,
    url: str,
    *,
    width: int = 1000,
    height: int = 900,
    session: dict[str, Any] | None = None,
) -> Tab:
    context = await browser.new_context(viewport={"width": width, "height": height})
    if session is not None:  # as if the demo page had signed in earlier in this tab
        await context.add_init_script(
            f"sessionStorage.setItem({json.dumps(SESSION_KEY)}, {json.dumps(json.dumps(session))})"
        )
    tab = Tab(await context.new_page())
    await tab.page.goto(url)
    return tab


def session(name: str, sub: str) -> dict[str, Any]:
    token = auth.mint(SECRET, sub=sub, name=name)
    return {"token": token, "name": name, "expires": 4_102_444_800_000}  # year 2100, in ms


async def sign_in(page: Page) -> None:
    await page.get_by_role("button", name="Sign in as a demo user").click()
    await expect(page.get_by_text("Signed in as")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Write a comment")).to_be_visible()


def card(page: Page, author: str, text: str | None = None) -> Locator:
    """The comment card of `author` (holding `text`, when given)."""
    cards = page.locator("article.card").filter(has=page.get_by_text(author, exact=True))
    return cards.filter(has_text=text) if text else cards


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Wait for the server to catch up; the assertion after it says what must hold."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def graphql(
    server: live.LiveServer, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_the_demo_page_renders_the_thread_nested_as_written(
    server: live.LiveServer, browser: Browser
) -> None:
    tab = await open_tab(
        browser,
        server.url + "/",
        height=1300,
        session=session("Demo Reader", "demo-reader"),
    )
    page = tab.page
    await expect(page.get_by_role("heading", name="28 Comments")).to_be_visible()
    await expect(page.locator("article.card")).to_have_count(28)
    shown = await page.locator("li.comment").evaluate_all(
        """items => items.map(li => [
             li.querySelector(':scope > article .name').textContent, Number(li.dataset.depth)])"""
    )
    assert [tuple(item) for item in shown] == demo_tree()
    # Each reply sits in the list of replies of its parent's item.
    ally = page.locator("li.comment").filter(has=card(page, "Ally", "psoas"))
    await expect(
        ally.locator("ol.replies li.comment ol.replies").get_by_text("Thank you so much Kim!")
    ).to_be_visible()
    avatar = card(page, "Corie Feiner").locator("img.avatar")
    await expect(avatar).to_have_attribute("src", server.url + "/avatars/Corie%20Feiner.svg")
    time = card(page, "Corie Feiner").locator("time")
    await expect(time).to_have_attribute("datetime", "2025-08-26T13:52:00+00:00")
    assert await time.get_attribute("title")
    await expect(page.get_by_text("Signed in as Demo Reader.")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Write a comment")).to_be_visible()
    await expect(page.get_by_role("combobox", name="Sort by")).to_have_value("OLDEST")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT))

    # Readable at 360 px: nothing wider than the screen, whatever the nesting.
    await page.set_viewport_size({"width": 360, "height": 800})
    await expect(page.get_by_role("heading", name="28 Comments")).to_be_visible()
    assert await page.evaluate("document.scrollingElement.scrollWidth") <= 360
    tab.assert_clean()


async def test_a_token_that_expires_on_an_open_page_leaves_it_readable(
    server: live.LiveServer, browser: Browser
) -> None:
    """The server closes the live socket with 4401 at `exp`; the widget loads afresh and
    reads anonymously, saying why, instead of knocking with the old token for ever."""
    token = auth.mint(SECRET, sub="brief", name="Bri Efly", expires_in=4)
    brief = {"token": token, "name": "Bri Efly", "expires": 4_102_444_800_000}
    tab = await open_tab(browser, server.url + "/", session=brief)
    page = tab.page
    await expect(page.get_by_text("Signed in as Bri Efly.")).to_be_visible()
    await expect(page.get_by_text("Signing in did not work")).to_be_visible(timeout=20_000)
    await expect(page.get_by_role("heading", name="28 Comments")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Write a comment")).to_have_count(0)


async def test_expand_full_comment_shows_the_whole_body(
    server: live.LiveServer, browser: Browser
) -> None:
    long_bodies = [c for c in fixture()["comments"] if len(flat_text(c["body"])) > CLIP]
    assert long_bodies, "the demo thread has comments longer than the clip"
    tab = await open_tab(browser, server.url + "/")
    page = tab.page
    buttons = page.get_by_role("button", name="Expand full comment")
    await expect(buttons).to_have_count(len(long_bodies))

    geoffrey = card(page, "Geoffrey Blake")
    whole = flat_text(next(c["body"] for c in long_bodies if c["author"] == "Geoffrey Blake"))
    ending = whole[-40:]
    body = geoffrey.locator(".body")
    await expect(body).to_contain_text("…")
    await expect(body).not_to_contain_text(ending)
    expand = geoffrey.get_by_role("button", name="Expand full comment")
    await expect(expand).to_have_attribute("aria-expanded", "false")
    await expand.press("Enter")  # by keyboard
    await expect(body).to_contain_text(ending)
    await expect(expand).to_have_count(0)
    await expect(body).to_be_focused()
    await expect(buttons).to_have_count(len(long_bodies) - 1)
    tab.assert_clean()


async def test_a_reply_in_one_page_appears_live_in_another(
    server: live.LiveServer, browser: Browser
) -> None:
    writer = await open_tab(browser, server.url + "/")
    reader = await open_tab(browser, server.url + "/")
    await sign_in(writer.page)
    await expect(reader.page.get_by_role("heading", name="28 Comments")).to_be_visible()
    # Both pages hold their two subscriptions (added, updated) before anything is posted.
    await until(lambda: server.app.state.broker.subscriber_count() == 4)
    assert server.app.state.broker.subscriber_count() == 4

    # A reply, by keyboard: Reply opens a box under the comment, Ctrl+Enter posts.
    reply = writer.page.get_by_role("button", name="Reply to Corie Feiner")
    await reply.focus()
    await reply.press("Enter")
    box = writer.page.get_by_role("textbox", name="Reply to Corie Feiner")
    await expect(box).to_be_focused()
    await box.fill("Old friends indeed: mine has opinions about every chair I sit in.")
    await box.press("Control+Enter")
    await expect(box).to_have_count(0)

    corie = reader.page.locator("li.comment").filter(has=card(reader.page, "Corie Feiner"))
    arrived = corie.locator("ol.replies").get_by_text("mine has opinions about every chair")
    await expect(arrived).to_be_visible()
    await expect(reader.page.get_by_role("heading", name="29 Comments")).to_be_visible()
    await expect(writer.page.get_by_role("heading", name="29 Comments")).to_be_visible()

    # A top-level comment waits behind a banner, and comes in on a click.
    composer = writer.page.get_by_role("textbox", name="Write a comment")
    await composer.fill("Read this on the train and sat up straighter.")
    await writer.page.get_by_role("button", name="Post", exact=True).click()
    await expect(composer).to_have_value("")
    banner = reader.page.get_by_role("button", name="1 new comment")
    await expect(banner).to_be_visible()
    await expect(reader.page.get_by_text("sat up straighter")).to_have_count(0)
    await banner.click()
    await expect(reader.page.get_by_text("sat up straighter")).to_be_visible()
    await expect(banner).to_be_hidden()
    await expect(reader.page.get_by_role("heading", name="30 Comments")).to_be_visible()
    writer.assert_clean()
    reader.assert_clean()


async def test_like_toggles_and_the_count_follows(
    server: live.LiveServer, browser: Browser
) -> None:
    tab = await open_tab(browser, server.url + "/")
    page = tab.page
    await sign_in(page)
    like = card(page, "Corie Feiner").get_by_role("button", name="Like")
    await expect(like).to_have_attribute("aria-pressed", "false")
    await expect(like.locator(".n")).to_have_text("23")
    await like.click()
    await expect(like).to_have_attribute("aria-pressed", "true")
    await expect(like.locator(".n")).to_have_text("24")

    await page.reload()  # kept by the server, and the demo page keeps the sign-in
    like = card(page, "Corie Feiner").get_by_role("button", name="Like")
    await expect(like.locator(".n")).to_have_text("24")
    await expect(like).to_have_attribute("aria-pressed", "true")
    await like.click()
    await expect(like).to_have_attribute("aria-pressed", "false")
    await expect(like.locator(".n")).to_have_text("23")
    tab.assert_clean()


async def test_server_errors_show_beside_the_form_and_the_text_stays(
    server: live.LiveServer, browser: Browser
) -> None:
    tab = await open_tab(browser, server.url + "/")
    page = tab.page
    await sign_in(page)
    composer = page.get_by_role("textbox", name="Write a comment")
    post = page.get_by_role("button", name="Post", exact=True)

    too_long = "This is a very long comment. " * 400  # 11,600 characters; the limit is 10,000
    await composer.fill(too_long)
    await post.click()
    await expect(composer).to_have_accessible_description(
        "body must be at most 10000 characters long"
    )
    await expect(composer).to_have_attribute("aria-invalid", "true")
    await expect(composer).to_have_value(too_long)

    await composer.fill("   \n  ")
    await post.click()
    await expect(composer).to_have_accessible_description("body must not be empty")
    await expect(composer).to_have_value("   \n  ")

    # A moderator locks the thread while the page is open.
    moderator = auth.mint(SECRET, sub="mod", name="Mo Derator", role="moderator")
    thread = await graphql(server, '{ thread(key: "demo") { id } }', {}, moderator)
    data = await graphql(
        server, LOCK, {"input": {"threadId": thread["thread"]["id"], "locked": True}}, moderator
    )
    assert data["lockThread"]["thread"] == {"locked": True}
    await card(page, "Diane Weber").get_by_role("button", name="Reply to Diane Weber").click()
    box = page.get_by_role("textbox", name="Reply to Diane Weber")
    await box.fill("Did the stretches help?")
    await page.get_by_role("button", name="Reply", exact=True).click()
    await expect(box).to_have_accessible_description(
        "this thread is locked: only moderators may change it"
    )
    await expect(box).to_have_value("Did the stretches help?")
    await expect(page.get_by_role("heading", name="28 Comments")).to_be_visible()

    # Drawn afresh, the locked thread is read-only: likes show, nothing changes them.
    await page.reload()
    await expect(page.get_by_text("This thread is closed to new comments.")).to_be_visible()
    await expect(card(page, "Diane Weber").locator("button.like")).to_be_disabled()
    await expect(page.get_by_role("button", name="Reply to Diane Weber")).to_have_count(0)
    tab.assert_clean()


async def test_authors_edit_and_delete_their_own_comments(
    server: live.LiveServer, browser: Browser
) -> None:
    tab = await open_tab(browser, server.url + "/")
    page = tab.page
    await sign_in(page)
    await expect(page.get_by_role("button", name="Edit")).to_have_count(0)  # nothing of mine yet
    await page.get_by_role("textbox", name="Write a comment").fill("First *draft*")
    await page.get_by_role("button", name="Post", exact=True).click()
    mine = page.locator("article.card").filter(has_text="First draft")
    await expect(mine.locator("em")).to_have_text("draft")  # Markdown, rendered by the server
    await expect(page.get_by_role("heading", name="29 Comments")).to_be_visible()

    await mine.get_by_role("button", name="Edit").click()
    box = page.get_by_role("textbox", name="Edit your comment")
    await expect(box).to_have_value("First *draft*")
    await box.fill("Second draft")
    await page.get_by_role("button", name="Save").click()
    edited = page.locator("article.card").filter(has_text="Second draft")
    await expect(edited.get_by_text("edited", exact=True)).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    await edited.get_by_role("button", name="Delete").click()
    await expect(page.get_by_text("Second draft")).to_have_count(0)
    await expect(page.get_by_role("heading", name="28 Comments")).to_be_visible()
    tab.assert_clean()


async def test_deep_threads_continue_more_replies_load_and_sorting(
    server: live.LiveServer, browser: Browser
) -> None:
    token = auth.mint(SECRET, sub="writer", name="Wren Writer")
    ids = await graphql(
        server,
        '{ thread(key: "demo") { comments(first: 20) { nodes { id author { name } '
        "replies(first: 1) { nodes { id replies(first: 1) { nodes { id } } } } } } } }",
        {},
        token,
    )
    nodes = ids["thread"]["comments"]["nodes"]
    cheryl = next(n for n in nodes if n["author"]["name"] == "Cheryl Duwe")
    parent = cheryl["replies"]["nodes"][0]["replies"]["nodes"][0]["id"]  # depth 2
    for depth in (3, 4):
        added = await graphql(
            server, ADD, {"input": {"parentId": parent, "body": f"Reply at depth {depth}"}}, token
        )
        parent = added["addComment"]["comment"]["id"]
    diane = next(n for n in nodes if n["author"]["name"] == "Diane Weber")
    for number in range(1, 7):  # Diane's comment: 1 reply, then 7
        await graphql(
            server, ADD, {"input": {"parentId": diane["id"], "body": f"Answer {number}"}}, token
        )

    tab = await open_tab(browser, server.url + "/")
    page = tab.page
    await expect(page.get_by_role("heading", name="36 Comments")).to_be_visible()
    await expect(page.get_by_text("Reply at depth 3")).to_be_visible()
    await expect(page.get_by_text("Reply at depth 4")).to_have_count(0)
    more = page.get_by_role("button", name="Continue this thread (1 reply)")
    await more.click()
    await expect(page.get_by_text("Reply at depth 4")).to_be_visible()
    await expect(page.locator("li.comment")).to_have_count(2)
    await page.get_by_role("button", name="Back to all comments").click()
    await expect(page.locator("article.card")).to_have_count(28 + 1 + 4)  # 5 of Diane's 7

    await expect(page.get_by_text("Answer 4", exact=True)).to_be_visible()
    await expect(page.get_by_text("Answer 5", exact=True)).to_have_count(0)
    await page.get_by_role("button", name="2 more replies").click()
    await expect(page.get_by_text("Answer 5", exact=True)).to_be_visible()
    await expect(page.get_by_text("Answer 6", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="2 more replies")).to_have_count(0)

    sort = page.get_by_role("combobox", name="Sort by")
    first_name = page.locator("ol > li.comment").first.locator(":scope > article .name")
    await sort.select_option("TOP")
    await expect(first_name).to_have_text("Corie Feiner")  # 23 likes
    await sort.select_option("NEWEST")
    await expect(first_name).to_have_text("TheLastBattleStation")
    tab.assert_clean()


@asynccontextmanager
async def another_site(page: str) -> AsyncIterator[str]:
    """A site serving `page` from 127.0.0.1 on a port of its own: the same address as
    threadql (so the browser lets it reach the loopback address), another origin."""

    async def answer(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async with live.serving(Starlette(routes=[Route("/{path:path}", answer)])) as url:
        yield url


async def test_a_site_of_another_origin_embeds_the_thread(
    server: live.LiveServer, browser: Browser
) -> None:
    """A blog on another origin adds the two lines; its CSS and the embed's stay apart, and a
    token from `window.threadqlToken()` signs the reader in."""
    token = auth.mint(SECRET, sub="blog-42", name="Blog Reader")
    host_page = f"""<!doctype html><html lang="en"><head><title>A blog post</title>
<style>p {{ color: rgb(255, 0, 0); }} .card {{ display: inline; }}</style></head><body>
<p class="card" id="mine">The blog's own paragraph.</p>
<div data-threadql-thread="demo"></div>
<script>window.threadqlToken = async () => {json.dumps(token)};</script>
<script src="{server.url}/embed.js" async></script></body></html>"""

    async with another_site(host_page) as blog:
        tab = await open_tab(browser, blog + "/posts/psoas")
        page = tab.page
        await expect(page.get_by_role("heading", name="28 Comments")).to_be_visible()
        body = card(page, "Kim Wenger Hall", "interesting muscle").locator(".body p")
        assert await body.evaluate("p => getComputedStyle(p).color") != "rgb(255, 0, 0)"
        mine = page.locator("#mine")
        assert await mine.evaluate("p => getComputedStyle(p).display") == "inline"

        like = card(page, "Cheryl Duwe", "massage therapist").get_by_role("button", name="Like")
        await like.click()  # a POST with Authorization, across origins
        await expect(like).to_have_attribute("aria-pressed", "true")
        await expect(like.locator(".n")).to_have_text("5")
        tab.assert_clean()


async def test_graphiql_runs_a_query_with_no_network_but_the_server(
    server: live.LiveServer, browser: Browser
) -> None:
    """Every request to anything but threadql fails, as on a machine with no network."""
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    outside: list[str] = []

    async def only_the_server(route: BrowserRoute) -> None:
        if route.request.url.startswith(server.url + "/"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_server)
    tab = Tab(await context.new_page())
    page = tab.page
    await page.goto(server.url + "/graphql")
    editor = page.get_by_role("region", name="Query Editor")
    await expect(editor).to_contain_text('thread(key: "demo")')  # the page's example query
    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    result = page.get_by_role("region", name="Result Window")
    await expect(result).to_contain_text('"commentCount": 28')
    await page.get_by_role("button", name="Show GraphiQL Explorer").click()
    await expect(page.locator(".graphiql-explorer-root")).to_contain_text("thread")
    assert outside == []
    tab.assert_clean()  # no policy violation either


LIKE = """mutation ($input: CommentIdInput!) {
  likeComment(input: $input) { comment { likeCount } errors { message } }
}"""
DELETE = """mutation ($input: CommentIdInput!) {
  deleteComment(input: $input) { comment { state } errors { message } }
}"""


async def test_comments_held_behind_the_banner_keep_up_with_replies_likes_and_deletions(
    server: live.LiveServer, browser: Browser
) -> None:
    tab = await open_tab(browser, server.url + "/")
    page = tab.page
    heading = page.get_by_role("heading", name=re.compile(r"^\d+ Comments$"))
    await expect(heading).to_have_text("28 Comments")
    await until(lambda: server.app.state.broker.subscriber_count() == 2)
    writer = auth.mint(SECRET, sub="writer", name="Wren Writer")
    reader = auth.mint(SECRET, sub="reader", name="Rhea Reader")

    async def add(token: str, body: str, parent: str | None = None) -> str:
        where = {"parentId": parent} if parent else {"threadKey": "demo"}
        data = await graphql(server, ADD, {"input": {**where, "body": body}}, token)
        comment_id: str = data["addComment"]["comment"]["id"]
        return comment_id

    held = await add(writer, "Held behind the banner for now.")
    banner = page.get_by_role("button", name=re.compile(r"new comments?$"))
    await expect(banner).to_have_text("1 new comment")
    # While it is held: a reply to it, a like, and another comment that comes and goes.
    await add(reader, "A reply that came while it was held.", parent=held)
    await expect(heading).to_have_text("30 Comments")
    await graphql(server, LIKE, {"input": {"commentId": held}}, reader)
    gone = await add(writer, "Posted and deleted while held.")
    await expect(banner).to_have_text("2 new comments")
    await graphql(server, DELETE, {"input": {"commentId": gone}}, writer)
    await expect(banner).to_have_text("1 new comment")
    await expect(heading).to_have_text("30 Comments")

    await banner.click()
    shown = page.locator("li.comment").filter(has=card(page, "Wren Writer", "Held behind"))
    await expect(shown.locator("ol.replies")).to_contain_text(
        "A reply that came while it was held."
    )
    await expect(card(page, "Wren Writer", "Held behind").locator(".n")).to_have_text("1")
    await expect(page.get_by_text("Posted and deleted while held.")).to_have_count(0)
    await expect(banner).to_be_hidden()
    await expect(heading).to_have_text("30 Comments")
    tab.assert_clean()
