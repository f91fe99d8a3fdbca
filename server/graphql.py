"""The GraphQL endpoint: Strawberry's ASGI view, held to the GraphQL-over-HTTP spec."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData, process_result
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType

from db.sql import request_statements
from resolvers.context import Context, app_limiter
from server import graphiql
from server.addresses import PerAddress
from server.auth import Unauthenticated, bearer
from server.cache import ReadRecorder, is_query, request_key
from server.fanout import Fanout
from server.hits import REVALIDATE, CachedResponse, media_type, single_operation
from server.negotiation import GRAPHQL_RESPONSE, JSON, negotiate
from server.persisted import PersistedQueryError, not_supported
from server.ratelimit import address_key, client_address, on_refusal
from server.sockets import SocketHandler

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cross_web import AsyncHTTPRequestAdapter
    from starlette.types import Message, Receive, Scope, Send
    from strawberry.http import GraphQLHTTPResponse
    from strawberry.http.base import BaseRequestProtocol
    from strawberry.schema import BaseSchema
    from strawberry.types import ExecutionResult

    from db.storage import Storage
    from server.auth import Authenticator, SignedIn
    from server.broker import Broker
    from server.cache import Entry, ResponseCache
    from server.metrics import Metrics
    from server.persisted import PersistedQueries
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
SUBSCRIPTIONS_OVER_WEBSOCKET = (
    "Subscriptions are served over a WebSocket to this same URL, with the"
    " graphql-transport-ws subprotocol; HTTP answers queries and mutations."
)
log = logging.getLogger("threadql.http")
request_log = logging.getLogger("threadql.request")  # one line for each HTTP request
BASE_URLS = 64  # sets of scheme, server, Host and root path whose base URL is remembered
TOO_MANY_CONNECTIONS = 4429  # graphql-ws clients give up on it rather than retry at once
_EXAMPLE_IN_PAGE = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


def ide_headers(nonce: str) -> dict[str, str]:
    """GraphiQL loads its files from threadql (server/graphiql.py), its inline script and
    style carry the nonce, its fonts are data: URLs, and nothing frames it."""
    policy = (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}';"
        " font-src data:; img-src 'self' data:; connect-src 'self';"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accepted only to be closed with a code the client reads: a refused handshake looks
    like a network failure, which graphql-ws clients retry."""
    offered = websocket.scope.get("subprotocols", [])
    protocol = GRAPHQL_TRANSPORT_WS_PROTOCOL
    await websocket.accept(protocol if protocol in offered else None)
    await websocket.close(code, reason)


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, f"The request body is larger than {limit} bytes.")


def _limited(receive: Receive, limit: int, seconds: float) -> Receive:
    """The body as the client sends it, refused once it grows past `limit` bytes or is still
    arriving `seconds` after it was first awaited: a client that trickles its body must not
    hold a connection and its request open for ever."""
    received = 0
    deadline: float | None = None
    complete = False

    async def receive_within_limits() -> Message:
        nonlocal received, deadline, complete
        if complete:  # the body is in: what follows is a disconnect, awaited as long as need be
            return await receive()
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestRefused(
                408,
                f"The request body took longer than {seconds:g} s to arrive.",
                headers={"Connection": "close"},
            ) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
            complete = not message.get("more_body", False)
        return message

    return receive_within_limits


def _http_base_url(request: Request | WebSocket) -> str:
    """This server's URL for links it serves itself, http(s) over a WebSocket too."""
    scope = request.scope
    server = scope.get("server")
    return _base_url(
        scope.get("scheme", "http"),
        None if server is None else tuple(server),
        request.headers.get("host"),
        scope.get("app_root_path", scope.get("root_path", "")),
    )


@lru_cache(maxsize=BASE_URLS)
def _base_url(scheme: str, server: tuple[str, int] | None, host: str | None, root_path: str) -> str:
    """Starlette's base URL, from the only parts of a request it reads, worked out once for
    each: every response-cache key holds it, and Starlette took longer over it than over the
    rest of a key."""
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope = {"type": "http", "scheme": scheme, "server": server, "headers": headers}
    url = HTTPConnection({**scope, "path": "/", "root_path": root_path}).base_url
    http_scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return str(url.replace(scheme=http_scheme)).rstrip("/")


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages are JSON text: clients read text frames, not binary."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(self.view.encode_json_string(message))
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class ReadAhead(StarletteRequestAdapter):
    """Strawberry's view of a request, with the operation the response cache's lookup read
    from it: on a miss, the body is neither read nor parsed again, nor a persisted query
    resolved twice."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.connection = request
        self.operation: GraphQLRequestData | None = getattr(request.state, "graphql", None)


class RequestRefused(HTTPException):
    """An HTTP-level refusal, answered as a GraphQL response with no `data`."""

    def __init__(
        self,
        status: int,
        reason: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        media: str | None = None,
    ) -> None:
        super().__init__(status, reason)
        self.code = code
        self.headers = headers or {}
        self.media = media  # when the answer's type is fixed whatever the client accepts


class CachedAnswer(Exception):
    """The request is answered by an entry of the response cache, found or just made."""

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry


def _refusal(error: PersistedQueryError) -> RequestRefused:
    """Apollo's clients look for these answers in JSON; no cache may keep one."""
    headers = {"Cache-Control": "private, no-cache, must-revalidate"}
    return RequestRefused(error.status, error.message, error.code, headers, media=JSON)


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: BaseSchema,
        storage: Storage,
        broker: Broker,
        authenticator: Authenticator,
        settings: Settings,
        *,
        cache: ResponseCache | None = None,
        persisted: PersistedQueries | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_operations,
            allowed_origins=("*",),  # tokens, never cookies: pages of any site may subscribe
        )
        self.storage = storage
        self.broker = broker
        self.authenticator = authenticator
        self.settings = settings
        self.cache = cache
        self.persisted = persisted
        self.metrics = metrics
        self.fanout = Fanout(schema, settings.subscriber_queue, settings.max_tokens)
        self.connections = PerAddress(settings.max_connections_per_address)
        self.operations = PerAddress(settings.max_subscriptions_per_address)
        example = EXAMPLE_QUERY.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
        self._ide_html = graphiql.local_page(
            _EXAMPLE_IN_PAGE.sub(
                lambda _: f"const EXAMPLE_QUERY = `{example}`;", self.graphql_ide_html, count=1
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = secrets.token_hex(8)  # in error answers and the log, to find one in the other
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive=receive, send=send)
            websocket.state.request_id = request_id
            await self._serve_websocket(websocket)
            return
        request = Request(
            scope,
            _limited(receive, self.settings.max_request_bytes, self.settings.request_body_timeout),
        )
        request.state.request_id = request_id
        request.state.operation = None
        request.state.outcome = "ok"
        started = time.perf_counter()
        statements = [0]
        counting = request_statements.set(statements)
        observing = on_refusal.set(self.metrics.refused if self.metrics is not None else None)
        status = 500
        try:
            response = await self._respond(request, request_id)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            request_statements.reset(counting)
            on_refusal.reset(observing)
            self._observe(request, status, time.perf_counter() - started, statements[0])

    async def _serve_websocket(self, websocket: WebSocket) -> None:
        address = client_address(websocket)
        if not self.connections.take(address):
            cap = self.connections.cap
            await _refuse(websocket, TOO_MANY_CONNECTIONS, f"at most {cap} connections per address")
            return
        metrics = self.metrics
        if metrics is not None:
            metrics.websockets.inc()
        try:
            await self.run(websocket)
        finally:
            if metrics is not None:
                metrics.websockets.dec()
            self.connections.give_back(address)

    def _observe(self, request: Request, status: int, seconds: float, statements: int) -> None:
        """One log line and the metrics of a finished request."""
        operation: str | None = request.state.operation
        outcome: str = request.state.outcome
        if status >= 500:
            outcome = "error"
        elif status >= 400 and outcome == "ok":
            outcome = "refused"
        if self.metrics is not None:
            self.metrics.observe_request(operation, outcome, seconds, statements)
        duration_ms = round(seconds * 1_000_000) / 1000  # as round(…, 3), at a tenth of its cost
        request_log.info(
            "%s %s %s %d %.1f ms %d statements",
            request.state.request_id,
            operation or "-",
            outcome,
            status,
            duration_ms,
            statements,
            extra={
                "request_id": request.state.request_id,
                "operation": operation,
                "outcome": outcome,
                "status": status,
                "duration_ms": duration_ms,
                "statements": statements,
            },
        )

    async def _respond(self, request: Request, request_id: str) -> Response:
        media = negotiate(request.headers.get("accept"))
        try:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.settings.max_request_bytes:
                raise _too_large(self.settings.max_request_bytes)
            if media is None and not self.should_render_graphql_ide(
                self.request_adapter_class(request)
            ):
                raise HTTPException(406, "Accept application/graphql-response+json or JSON")
            hit = await self._hit(request, media) if media is not None else None
            response = await self.run(request) if hit is None else hit
        except CachedAnswer as answer:
            if_none_match = request.headers.get("if-none-match")
            response = CachedResponse(answer.entry, media or JSON, if_none_match)
        except HTTPException as error:
            response = self._error_response(error, media or JSON)
        except Exception:  # the last line of defence: no stack trace ever reaches a client
            log.exception("request %s failed", request_id)
            unexpected = RequestRefused(500, "Unexpected error.", code="INTERNAL_SERVER_ERROR")
            response = self._error_response(unexpected, media or JSON, request_id)
        response.headers["X-Request-Id"] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def _hit(self, request: Request, media: str) -> Response | None:
        """The response cache's answer to an anonymous request, found before Strawberry's view
        runs: an answer from bytes then costs little beyond the version check."""
        if self.cache is None or "authorization" in request.headers:
            return None
        data = await self._read_ahead(request)
        if data is None or data.query is None:
            return None
        base_url = _http_base_url(request)
        key = request_key(data.query, data.variables, data.operation_name, base_url)
        entry = await self.cache.lookup(key)
        if entry is None:
            return None
        request.state.operation = entry.operation
        return CachedResponse(entry, media, request.headers.get("if-none-match"))

    async def _read_ahead(self, request: Request) -> GraphQLRequestData | None:
        """The operation of a GET or POST, read as `parse_http_body` reads it (and refused with
        the same errors), when it is one; anything else is left to Strawberry."""
        if request.method == "GET":
            params = request.query_params
            if params.get("query") is None and "extensions" not in params:
                return None  # GraphiQL, or a request without a document
            decoded: object = self.parse_query_params(params)
        elif request.method == "POST" and media_type(request.headers.get("content-type")) == JSON:
            decoded = self.parse_json(await request.body())
        else:
            return None
        data = single_operation(decoded)
        if data is not None:
            data = await self._resolved(data, request)
            request.state.graphql = data
        return data

    @staticmethod
    def _error_response(
        error: HTTPException, media: str, request_id: str | None = None
    ) -> Response:
        message: dict[str, Any] = {"message": error.reason}
        headers = {}
        if isinstance(error, RequestRefused):
            headers = error.headers
            media = error.media or media
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
        storage: Storage = self.storage
        viewer = None
        if isinstance(request, Request):
            authorization = request.headers.get("authorization")
            signed_in = await self._signed_in(authorization)
            viewer = signed_in.user if signed_in is not None else None
            if self.cache is not None and authorization is None:
                storage = ReadRecorder(self.storage)  # this request may be answered from cache
        return Context(
            storage=storage,
            broker=self.broker,
            settings=self.settings,
            request=request,
            response=response,
            base_url=_http_base_url(request),
            viewer=viewer,
        )

    async def _signed_in(self, authorization: object) -> SignedIn | None:
        """The signed-in user; a bad token is refused, never read as anonymous."""
        try:
            if authorization is not None and not isinstance(authorization, str):
                raise Unauthenticated("`authorization` must be `Bearer <token>`")
            return await self.authenticator.signed_in(bearer(authorization))
        except Unauthenticated as error:
            raise RequestRefused(
                401,
                str(error),
                code="UNAUTHENTICATED",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from error

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """Check the token of `connection_init`; anonymous connections may read and subscribe.
        A signed-in connection's authority ends when its token expires (`SocketHandler`)."""
        params = context.connection_params or {}
        # Clients copy the HTTP header here, and header names are case-insensitive.
        names = [name for name in params if name.lower() == "authorization"]
        authorization = params[names[0]] if names else None
        try:
            signed_in = await self._signed_in(authorization)
        except RequestRefused as error:
            raise ConnectionRejectionError({"message": error.reason}) from error
        if signed_in is not None:
            context.viewer, context.viewer_expires = signed_in.user, signed_in.expires
        context.fresh_loaders()
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, its inline script and style allowed by a nonce, its files from threadql."""
        refusal = graphiql.not_installed()
        if refusal is not None:
            return refusal
        nonce = secrets.token_urlsafe(16)
        html = self._ide_html.replace("<script>", f'<script nonce="{nonce}">')
        html = html.replace("<style>", f'<style nonce="{nonce}">')
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
        assert isinstance(request, ReadAhead)
        if request.operation is not None:
            return request.operation
        if request.method == "POST" and media_type(request.content_type) != JSON:
            raise HTTPException(415, "POST a JSON body with Content-Type: application/json")
        data = await super().parse_http_body(request)
        if not isinstance(data, GraphQLRequestData):
            return data
        return await self._resolved(data, request.connection)

    async def _resolved(self, data: GraphQLRequestData, request: Request) -> GraphQLRequestData:
        """Within the document limit, and with a persisted query's document in place."""
        limit = self.settings.max_document_bytes
        if len((data.query or "").encode()) > limit:
            raise RequestRefused(413, f"The query document is longer than {limit} bytes.")
        if data.extensions and "persistedQuery" in data.extensions:
            data = await self._persisted_query(data, request)
        return data

    async def _persisted_query(
        self, data: GraphQLRequestData, request: Request
    ) -> GraphQLRequestData:
        assert data.extensions is not None
        try:
            if self.persisted is None:
                raise not_supported()
            register = data.query is not None and await self._may_register(request)
            query = await self.persisted.resolve(
                data.extensions["persistedQuery"], data.query, register=register
            )
        except PersistedQueryError as error:
            raise _refusal(error) from error
        return dataclasses.replace(data, query=query)

    async def _may_register(self, request: Request) -> bool:
        """Registrations spend from the client address's budget: the token, if any, is not
        checked yet. Over it, the document runs but is not kept."""
        settings = self.settings
        wait = await app_limiter(request).take(
            "registration",
            address_key(request),
            settings.registrations_per_minute,
            settings.registration_burst,
        )
        return wait == 0

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Not for a GET that names its query by hash alone."""
        return super().should_render_graphql_ide(request) and (
            "extensions" not in request.query_params
        )

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

    request_adapter_class = ReadAhead
    websocket_adapter_class = TextFrames
    graphql_transport_ws_handler_class = SocketHandler

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def execute_single(  # noqa: PLR0917 - the signature it overrides
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """An anonymous query that the response cache could not answer runs and, when every
        read was a thread's, is kept."""
        name: object = request_data.operation_name  # as the client sent it: any JSON value
        request.state.operation = name if isinstance(name, str) else None
        recorder = context.storage if isinstance(context.storage, ReadRecorder) else None
        key = None
        if self.cache is not None and recorder is not None and request_data.query is not None:
            key = request_key(
                request_data.query,
                request_data.variables,
                request_data.operation_name,
                context.base_url,
            )
            sub_response.headers.update(REVALIDATE)
        try:
            result = await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as error:
            refused = error.__cause__
            if isinstance(refused, InvalidOperationTypeError):
                if refused.operation_type is OperationType.SUBSCRIPTION:
                    raise RequestRefused(400, SUBSCRIPTIONS_OVER_WEBSOCKET) from error
                raise RequestRefused(405, error.reason, headers={"Allow": "POST"}) from error
            raise
        if result.errors:
            # Errors without a path stopped the request before anything ran.
            before = result.data is None and all(e.path is None for e in result.errors)
            request.state.outcome = "refused" if before else "error"
        if (
            key is not None
            and self.cache is not None
            and recorder is not None
            and recorder.cacheable
            and not result.errors
            and is_query(request_data.query or "", request_data.operation_name)
        ):
            body = self.encode_json(await self.process_result(request, result))
            entry = self.cache.store(key, body, recorder.versions, request.state.operation)
            raise CachedAnswer(entry)
        return result

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
