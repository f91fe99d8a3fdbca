"""The read workloads as GraphQL documents, and what their answers contain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REPLY_LEVELS = 3

_COMMENT_FIELDS = """
fragment CommentFields on Comment {
  id
  depth
  author { id name avatarUrl }
  body
  bodyHtml
  excerpt { text truncated }
  state
  createdAt
  editedAt
  likeCount
  viewerHasLiked
  viewerCanEdit
  viewerCanDelete
  replyCount
  descendantCount
}
"""


@dataclass(frozen=True)
class Workload:
    name: str
    thread_key: str
    first: int
    replies_first: int

    @property
    def query(self) -> str:
        comments = _connection("comments", self.first, self.replies_first, REPLY_LEVELS)
        return (
            "query Bench($key: String!) {\n"
            f"  thread(key: $key) {{ id title commentCount {comments} }}\n"
            "}\n" + _COMMENT_FIELDS
        )

    @property
    def worst_case_nodes(self) -> int:
        """What a node limit counts: `first` multiplied along each path of connections."""
        return sum(self.first * self.replies_first**level for level in range(REPLY_LEVELS + 1))

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the POST."""
        return {"query": self.query, "variables": {"key": self.thread_key}}


def _connection(field: str, first: int, replies_first: int, levels: int) -> str:
    nested = _connection("replies", replies_first, replies_first, levels - 1) if levels else ""
    return (
        f"{field}(first: {first}) {{ totalCount"
        " pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
        f" nodes {{ ...CommentFields {nested} }} }}"
    )


# The demo thread has 17 top-level comments, at most 1 reply under any comment and 2
# levels of replies: this page holds all of it.
W1 = Workload("W1 demo thread, every field, all nesting", "demo", first=100, replies_first=10)
W2 = Workload("W2 10k thread, first page", "bench-10k", first=50, replies_first=10)
# W2's query on a tree of the same shape with ten times the top-level comments.
W3 = Workload("W3 100k thread, first page", "bench-100k", first=50, replies_first=10)
WORKLOADS = (W1, W2)  # on every backend
ALL_WORKLOADS = (W1, W2, W3)


class GraphQLFailed(RuntimeError):
    """The server answered, but not with data for the whole query."""


def checked_data(answer: dict[str, Any]) -> dict[str, Any]:
    if answer.get("errors"):
        raise GraphQLFailed(f"the response has errors: {answer['errors']}")
    data = answer.get("data")
    if not isinstance(data, dict) or data.get("thread") is None:
        raise GraphQLFailed(f"the response has no thread: {str(answer)[:500]}")
    return data


def count_comments(data: dict[str, Any]) -> int:
    """Every Comment node at every level of the answer."""

    def count(connection: dict[str, Any] | None) -> int:
        if connection is None:
            return 0
        nodes: list[dict[str, Any]] = connection["nodes"]
        return len(nodes) + sum(count(node.get("replies")) for node in nodes)

    return count(data["thread"]["comments"])
