"""The demo thread comes back complete, in order, byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from db.demo import fixture

if TYPE_CHECKING:
    from tests.conftest import GraphQLClient

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "comment-thread.txt"

FIELDS = (
    "id depth author { name avatarUrl } body bodyHtml state likeCount replyCount descendantCount"
)
# Asks for everything the demo holds: at most 1 reply per comment, 17 top-level comments,
# within the node limit (20 + 20x5 + 20x5x5 + 20x5x5x5 = 3,120).
DEMO_QUERY = f"""
{{
  thread(key: "demo") {{
    key title commentCount
    comments(first: 20) {{
      totalCount
      pageInfo {{ hasNextPage hasPreviousPage }}
      nodes {{
        {FIELDS}
        replies(first: 5) {{
          totalCount
          nodes {{
            {FIELDS}
            replies(first: 5) {{
              totalCount
              nodes {{ {FIELDS} replies(first: 5) {{ totalCount nodes {{ id }} }} }}
            }}
          }}
        }}
      }}
    }}
  }}
}}
"""


def flatten(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first, as the thread reads on the page."""
    out = []
    for node in nodes:
        out.append(node)
        out.extend(flatten(node.get("replies", {}).get("nodes", [])))
    return out


async def test_demo_thread_is_complete_and_in_order(gql: GraphQLClient) -> None:
    thread = (await gql.data(DEMO_QUERY))["thread"]
    assert thread["key"] == "demo"
    assert thread["commentCount"] == 28
    top = thread["comments"]
    assert top["totalCount"] == 17
    assert len(top["nodes"]) == 17
    assert top["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": False}

    comments = flatten(top["nodes"])
    expected = fixture()["comments"]
    assert [c["author"]["name"] for c in comments] == [e["author"] for e in expected]
    assert [c["body"] for c in comments] == [e["body"] for e in expected]
    assert [c["likeCount"] for c in comments] == [e["likes"] for e in expected]
    assert sum(1 for c in comments if c["depth"] > 0) == 11
    assert max(c["depth"] for c in comments) == 2
    assert all(c["state"] == "VISIBLE" for c in comments)


async def test_demo_nesting_and_counts(gql: GraphQLClient) -> None:
    nodes = (await gql.data(DEMO_QUERY))["thread"]["comments"]["nodes"]
    by_author = {n["author"]["name"]: n for n in nodes}
    cheryl = by_author["Cheryl Duwe"]
    assert cheryl["replyCount"] == 1
    assert cheryl["descendantCount"] == 2
    kim = cheryl["replies"]["nodes"][0]
    assert kim["author"]["name"] == "Kim Wenger Hall"
    assert kim["depth"] == 1
    assert kim["body"].startswith("Very cool! A client asked me yesterday")
    answer = kim["replies"]["nodes"][0]
    assert (answer["author"]["name"], answer["depth"]) == ("Cheryl Duwe", 2)
    assert answer["body"].startswith("Yes. For me the hip hook is too aggressive.")
    assert answer["replies"] == {"totalCount": 0, "nodes": []}

    ally = by_author["Ally"]
    assert [r["author"]["name"] for r in ally["replies"]["nodes"]] == ["Kim Wenger Hall"]
    assert ally["replies"]["nodes"][0]["replies"]["nodes"][0]["body"] == "Thank you so much Kim!"

    for node in flatten(nodes):
        replies = node["replies"]
        assert node["replyCount"] == replies["totalCount"] == len(replies["nodes"])
        assert node["descendantCount"] == len(flatten(replies["nodes"]))


async def test_demo_text_keeps_emoji_quotes_and_paragraphs(gql: GraphQLClient) -> None:
    comments = flatten((await gql.data(DEMO_QUERY))["thread"]["comments"]["nodes"])
    bodies = {c["author"]["name"]: c for c in comments if c["depth"] == 0}
    assert bodies["Aria Vega"]["body"].endswith("Thank you so so much 🙏🏾")
    assert "that’s always" in bodies["Corie Feiner"]["body"]
    geoffrey = bodies["Geoffrey Blake"]
    assert geoffrey["body"].count("\n\n") == 2
    assert geoffrey["bodyHtml"].count("<p>") == 3
    assert "“fixed”" in geoffrey["bodyHtml"]
    jess = bodies["Jess | Wellness with Depth"]
    assert '<a href="https://substack.com/@vibrationalbloom"' in jess["bodyHtml"]


async def test_demo_avatars_are_served_by_threadql(gql: GraphQLClient) -> None:
    thread = (await gql.data(DEMO_QUERY))["thread"]
    url = thread["comments"]["nodes"][0]["author"]["avatarUrl"]
    assert url == "http://threadql.test/avatars/Corie%20Feiner.svg"
    response = await gql.http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert ">CF</text>" in response.text


def parse_seed(text: str) -> list[tuple[str, str]]:
    """(author, body) pairs of the seed file: blocks end with 'Expand full comment'."""
    blocks = text.split("User's avatar\n", 1)[1].split("\n\nExpand full comment")
    pairs = []
    for block in (b.lstrip("\n") for b in blocks if b.strip()):
        head, body = block.split("\n", 1)
        pairs.append((head.removesuffix("'s avatar"), body.strip("\n")))
    return pairs


@pytest.mark.skipif(not SEED.exists(), reason=f"the seed thread is not at {SEED}")
def test_fixture_matches_the_seed_thread_byte_for_byte() -> None:
    seed = parse_seed(SEED.read_text(encoding="utf-8"))
    assert [(c["author"], c["body"]) for c in fixture()["comments"]] == seed


def test_fixture_replies_answer_the_comment_above_in_time_order() -> None:
    comments = fixture()["comments"]
    assert [c["parent"] for c in comments if c["parent"] is not None] == [
        i - 1 for i, c in enumerate(comments) if c["parent"] is not None
    ]
    times = [c["createdAt"] for c in comments]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
