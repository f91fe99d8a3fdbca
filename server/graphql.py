"""The GraphQL endpoint: Strawberry's ASGI view, held to the GraphQL-over-HTTP spec."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.asgi import GraphQL
from strawberry.http import process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from resolvers.context import Context
from server.negotiation import GRAPHQL_RESPONSE, JSON, negotiate

if TYPE_CHECKING:
    from cross_web import AsyncHTTPRequestAdapter
    from starlette.types import Receive, Scope, Send
    from starlette.websockets import WebSocket
    from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
    from strawberry.schema import BaseSchema
    from strawberry.types import ExecutionResult

    from db.storage import Storage

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
_EXAMPLE_IN_PAGE = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


class MethodNotAllowed(HTTPException):
    def __init__(self, reason: str, allow: str) -> None:
        super().__init__(405, reason)
        self.allow = allow


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, schema: BaseSchema, storage: Storage) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.storage = storage
        example = EXAMPLE_QUERY.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
        self._ide_html = _EXAMPLE_IN_PAGE.sub(
            lambda _: f"const EXAMPLE_QUERY = `{example}`;", self.graphql_ide_html, count=1
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        media = negotiate(request.headers.get("accept"))
        try:
            if media is None and not self.should_render_graphql_ide(
                self.request_adapter_class(request)
            ):
                raise HTTPException(406, "Accept application/graphql-response+json or JSON")
            response = await self.run(request)
        except HTTPException as error:
            response = self._error_response(error, media or JSON)
        await response(scope, receive, send)

    @staticmethod
    def _error_response(error: HTTPException, media: str) -> Response:
        headers = {"Allow": error.allow if isinstance(error, MethodNotAllowed) else "GET, POST"}
        return Response(
            orjson.dumps({"errors": [{"message": error.reason}]}),
            status_code=error.status_code,
            headers=headers if error.status_code == 405 else None,
            media_type=f"{media}; charset=utf-8",
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(
            storage=self.storage,
            request=request,
            response=response,
            base_url=str(request.base_url).rstrip("/"),
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self._ide_html)

    def is_request_allowed(self, request: Any) -> bool:
        if request.method not in ("GET", "POST"):
            raise MethodNotAllowed("GraphQL is served over GET (queries) and POST", "GET, POST")
        return True

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type != JSON:
                raise HTTPException(415, "POST a JSON body with Content-Type: application/json")
        return await super().parse_http_body(request)

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
                raise MethodNotAllowed(error.reason, "POST") from error
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
