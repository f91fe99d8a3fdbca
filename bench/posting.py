"""addComment over HTTP as a signed-in user, every answer checked for errors."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Self

import httpx

from server import auth

DEMO_THREAD = "demo"
REQUEST_TIMEOUT = 30.0

ADD_COMMENT = """mutation Add($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } errors { code message field } }
}"""
THREAD = "query Thread($key: String!) { thread(key: $key) { id commentCount } }"


class PostFailed(RuntimeError):
    """A request was not answered with data and no errors."""


def new_secret() -> str:
    """48 random URL-safe characters, for THREADQL_JWT_SECRET."""
    return secrets.token_urlsafe(36)


def comment_body(author: int, number: int) -> str:
    """Markdown with emphasis and a link, about the length of a short reply."""
    return (
        f"Comment {number} from writer {author}: *this* helped, thanks. More in"
        f" [my notes](https://example.com/notes/{author}/{number}), if anyone is curious."
    )


@dataclass(frozen=True)
class ThreadState:
    id: str
    comment_count: int


@dataclass(frozen=True)
class Posted:
    comment_id: str
    sent_at: float  # time.perf_counter() as the request left
    round_trip: float  # seconds until the whole answer was in


class Poster:
    """One user's keep-alive HTTP connection to the GraphQL endpoint."""

    def __init__(
        self,
        graphql_url: str,
        secret: str,
        sub: str,
        name: str,
        transport: httpx.AsyncBaseTransport | None = None,  # an app in this process, say
    ) -> None:
        self.url = graphql_url
        token = auth.mint(secret, sub=sub, name=name, expires_in=3600)
        self.client = httpx.AsyncClient(
            headers={"authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=1),
            timeout=REQUEST_TIMEOUT,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    async def thread(self, key: str = DEMO_THREAD) -> ThreadState:
        data = await self._data(THREAD, {"key": key})
        thread = data.get("thread")
        if not isinstance(thread, dict):
            raise PostFailed(f"no thread has the key {key!r}")
        return ThreadState(thread["id"], thread["commentCount"])

    async def add(self, body: str, *, thread_id: str, parent_id: str | None = None) -> Posted:
        """A top-level comment, or a reply when `parent_id` is given."""
        where = {"parentId": parent_id} if parent_id else {"threadId": thread_id}
        sent_at = time.perf_counter()
        data = await self._data(ADD_COMMENT, {"input": {"body": body, **where}})
        round_trip = time.perf_counter() - sent_at
        payload = data["addComment"]
        comment = payload.get("comment")
        if payload.get("errors") or not isinstance(comment, dict):
            raise PostFailed(f"addComment was refused: {payload}")
        return Posted(comment["id"], sent_at, round_trip)

    async def _data(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(self.url, json={"query": query, "variables": variables})
        if response.status_code != 200:
            raise PostFailed(f"HTTP {response.status_code}: {response.text[:500]}")
        answer = response.json()
        data = answer.get("data")
        if answer.get("errors") or not isinstance(data, dict):
            raise PostFailed(f"the response has errors: {str(answer)[:500]}")
        return data
