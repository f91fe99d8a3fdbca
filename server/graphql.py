"""The GraphQL endpoint: Strawberry's ASGI view, held to the GraphQL-over-HTTP spec."""

from __future__ import annotations

import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData, process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from resolvers.context import Context
from server.auth import Unauthenticated, bearer
from server.negotiation import GRAPHQL_RESPONSE, JSON, negotiate

if TYPE_CHECKING:
    from cross_web import AsyncHTTPRequestAdapter
    from starlette.types import Message, Receive, Scope, Send
    from strawberry.http import GraphQLHTTPResponse
    from strawberry.schema import BaseSchema
    from strawberry.types import ExecutionResult

    from db.rows import UserRow
    from db.storage import Storage
    from server.auth import Authenticator
    from server.broker import Broker
    from server.settings import Settings

EXAMPLE_QUERY = """# The demo thread, as a comment section shows it. Press ▶ to run.
query DemoThread {
  thread(key: "demo") {
    title
    commentCount
    comments(first: 20) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        ...CommentFields
        replies(first: 10) {
          nodes {
            ...CommentFields
            replies(first: 10) { nodes { ...CommentFields } }
          }
        }
      }
    }
  }
}

fragment CommentFields on Comment {
  id
  author { name avatarUrl }
  createdAt
  likeCount
  replyCount
  excerpt(maxLength: 200) { text truncated }
  bodyHtml
}
"""
log = logging.getLogger("threadql.http")
_EXAMPLE_IN_PAGE = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


def ide_headers(nonce: str) -> dict[str, str]:
    """GraphiQL loads from unpkg; its own inline scripts carry the nonce; nothing frames it."""
    cdn = "https://unpkg.com"
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}' {cdn}; style-src 'unsafe-inline' {cdn};"
        f" font-src {cdn} data:; img-src 'self' data: {cdn}; connect-src 'self' ws: wss:;"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, f"The request body is larger than {limit} bytes.")


def _limited(receive: Receive, limit: int) -> Receive:
    """The body as the client sends it, refused once it grows past `limit` bytes."""
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return receive_within_limit


class RequestRefused(HTTPException):
    """An HTTP-level refusal, answered as a GraphQL response with no `data`."""

    def __init__(
        self,
        status: int,
        reason: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, reason)
        self.code = code
        self.headers = headers or {}


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: BaseSchema,
        storage: Storage,
        broker: Broker,
        authenticator: Authenticator,
        settings: Settings,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_operations,
        )
        self.storage = storage
        self.broker = broker
        self.authenticator = authenticator
        self.settings = settings
        example = EXAMPLE_QUERY.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
        self._ide_html = _EXAMPLE_IN_PAGE.sub(
            lambda _: f"const EXAMPLE_QUERY = `{example}`;", self.graphql_ide_html, count=1
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = secrets.token_hex(8)  # in error answers and the log, to find one in the other
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive=receive, send=send)
            websocket.state.request_id = request_id
            await self.run(websocket)
            return
        request = Request(scope, _limited(receive, self.settings.max_request_bytes))
        request.state.request_id = request_id
        media = negotiate(request.headers.get("accept"))
        try:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.settings.max_request_bytes:
                raise _too_large(self.settings.max_request_bytes)
            if media is None and not self.should_render_graphql_ide(
                self.request_adapter_class(request)
            ):
                raise HTTPException(406, "Accept application/graphql-response+json or JSON")
            response = await self.run(request)
        except HTTPException as error:
            response = self._error_response(error, media or JSON)
        except Exception:  # the last line of defence: no stack trace ever reaches a client
            log.exception("request %s failed", request_id)
            unexpected = RequestRefused(500, "Unexpected error.", code="INTERNAL_SERVER_ERROR")
            response = self._error_response(unexpected, media or JSON, request_id)
        response.headers["X-Request-Id"] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        await response(scope, receive, send)

    @staticmethod
    def _error_response(
        error: HTTPException, media: str, request_id: str | None = None
    ) -> Response:
        message: dict[str, Any] = {"message": error.reason}
        headers = {}
        if isinstance(error, RequestRefused):
            headers = error.headers
            if error.code:
                message["extensions"] = {"code": error.code}
        if request_id:
            message.setdefault("extensions", {})["requestId"] = request_id
        return Response(
            orjson.dumps({"errors": [message]}),
            status_code=error.status_code,
            headers=headers,
            media_type=f"{media}; charset=utf-8",
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        context = Context(
            storage=self.storage,
            broker=self.broker,
            settings=self.settings,
            request=request,
            response=response,
            base_url=str(request.base_url).rstrip("/"),
        )
        if isinstance(request, Request):
            context.viewer = await self._viewer(request.headers.get("authorization"))
            context.fresh_loaders()
        return context

    async def _viewer(self, authorization: object) -> UserRow | None:
        """The signed-in user; a bad token is refused, never read as anonymous."""
        try:
            if authorization is not None and not isinstance(authorization, str):
                raise Unauthenticated("`authorization` must be `Bearer <token>`")
            return await self.authenticator.user(bearer(authorization))
        except Unauthenticated as error:
            raise RequestRefused(
                401,
                str(error),
                code="UNAUTHENTICATED",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from error

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """Check the token of `connection_init`; anonymous connections may read and subscribe."""
        params = context.connection_params or {}
        try:
            context.viewer = await self._viewer(params.get("authorization"))
        except RequestRefused as error:
            raise ConnectionRejectionError({"message": error.reason}) from error
        context.fresh_loaders()
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, its inline scripts allowed by a nonce and nothing else of the page's own."""
        nonce = secrets.token_urlsafe(16)
        html = self._ide_html.replace("<script>", f'<script nonce="{nonce}">')
        return HTMLResponse(html, headers=ide_headers(nonce))

    def is_request_allowed(self, request: Any) -> bool:
        if request.method not in ("GET", "POST"):
            raise RequestRefused(
                405, "GraphQL is served over GET (queries) and POST", headers={"Allow": "GET, POST"}
            )
        return True

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type != JSON:
                raise HTTPException(415, "POST a JSON body with Content-Type: application/json")
        data = await super().parse_http_body(request)
        limit = self.settings.max_document_bytes
        if isinstance(data, GraphQLRequestData) and len((data.query or "").encode()) > limit:
            raise RequestRefused(413, f"The query document is longer than {limit} bytes.")
        return data

    def parse_json(self, data: str | bytes) -> Any:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, "Not valid JSON in UTF-8") from error
        if not isinstance(value, dict | list):
            raise HTTPException(400, "A GraphQL request is a JSON object")
        return value

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):
                raise RequestRefused(405, error.reason, headers={"Allow": "POST"}) from error
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = process_result(result)
        # Errors without a path failed the whole request before execution (parse,
        # validation, variables): the spec says such a response has no `data`.
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            response.pop("data", None)
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media = sub_response.media_type or JSON
        failed = isinstance(response_data, dict) and "data" not in response_data
        status = 400 if media == GRAPHQL_RESPONSE and failed else 200
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or status,
            media_type=f"{media}; charset=utf-8",
        )
        for name, value in sub_response.headers.items():
            if name != "content-type":
                response.headers.append(name, value)
        return response
