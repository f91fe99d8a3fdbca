"""What every SQL backend shares: the statements, the counting, the checks of each write.

A backend supplies connections and a few dialect details (placeholders, lists of values,
time values, locking a thread for a write); the statements and the logic live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from db import migrations, policy
from db.rows import (
    TOKEN,
    AddedComment,
    CommentOrder,
    CommentRow,
    CommentState,
    ImportResult,
    NewComment,
    Revision,
    ThreadDump,
    ThreadRow,
    UserRow,
    parse_time,
)
from db.storage import (
    Conflict,
    EditWindowClosed,
    Forbidden,
    InvalidInput,
    NotFound,
    Reason,
    ThreadLocked,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Sequence
    from contextlib import AbstractAsyncContextManager
    from datetime import timedelta

    from db.rows import (
        Actor,
        Identity,
        ImportedComment,
        ImportedThread,
        NewUser,
        PageRequest,
        ThreadRef,
    )


_USER_COLUMNS = "u.id, u.sub, u.name, u.avatar_url, u.role, u.origin"
_THREAD_COLUMNS = (
    "t.id, t.key, t.title, t.url, t.created_at, t.locked, t.comment_count, t.top_level_count,"
    " t.version"
)


def _comment_columns(alias: str) -> str:
    """A comment's columns under `alias`, then its author's from `users u`."""
    names = (
        "id, thread_id, parent_id, depth, body, body_html, body_text, state, created_at,"
        " edited_at, like_count, reply_count, listed_reply_count, descendant_count"
    )
    return ", ".join(f"{alias}.{name}" for name in names.split(", ")) + ", " + _USER_COLUMNS


_COMMENT_COLUMNS = _comment_columns("c")
_COMMENT_FROM = "FROM comments c LEFT JOIN users u ON u.id = c.author_id"

_ORDER_BY = {
    CommentOrder.OLDEST: "c.created_at, c.id",
    CommentOrder.NEWEST: "c.created_at DESC, c.id DESC",
    CommentOrder.TOP: "c.like_count DESC, c.created_at, c.id",
}
# Listings show visible comments, and placeholders for hidden ones with visible replies.
_LISTED = " AND (c.state = 'VISIBLE' OR c.descendant_count > 0)"
_AFTER = {
    CommentOrder.OLDEST: " AND (c.created_at, c.id) > (?, ?)",
    CommentOrder.NEWEST: " AND (c.created_at, c.id) < (?, ?)",
    CommentOrder.TOP: (
        " AND (c.like_count < ? OR (c.like_count = ? AND (c.created_at, c.id) > (?, ?)))"
    ),
}


def _user(row: Sequence[Any], at: int = 0) -> UserRow | None:
    if row[at] is None:
        return None
    return UserRow(row[at], row[at + 1], row[at + 2], row[at + 3], row[at + 4], row[at + 5])


def _new_comment(item: ImportedComment, users: dict[Identity, int]) -> NewComment:
    return NewComment(
        author_id=users[item.author] if item.author else None,
        body=item.body,
        body_html=item.body_html,
        body_text=item.body_text,
        created_at=item.created_at,
        parent_id=item.parent_id,
        parent_index=item.parent_index,
        like_count=item.like_count,
        edited_at=item.edited_at,
    )


class _Link(NamedTuple):
    """A comment as a write sees the chain of replies it sits in."""

    id: int
    parent_id: int | None
    depth: int
    state: str
    descendant_count: int

    @property
    def visible(self) -> bool:
        return self.state == CommentState.VISIBLE.value

    @property
    def unlisted(self) -> bool:
        """A placeholder with nothing visible beneath: listings leave it out."""
        return not self.visible and self.descendant_count == 0


# A comment and every comment above it, nearest first: one statement, one row per level.
# Comments keep only their parent: what lies above is walked when a write needs it, so a
# comment's row is the same size at any depth.
_CHAIN = (
    "WITH RECURSIVE chain (id, parent_id, depth, state, descendant_count) AS ("
    "SELECT id, parent_id, depth, state, descendant_count FROM comments"
    " WHERE thread_id = ? AND id = ?"
    " UNION ALL SELECT c.id, c.parent_id, c.depth, c.state, c.descendant_count"
    " FROM comments c JOIN chain ON c.thread_id = ? AND c.id = chain.parent_id"
    ") SELECT id, parent_id, depth, state, descendant_count FROM chain ORDER BY depth DESC"
)


def _above(tree: dict[int, _Link], comment_id: int | None) -> Iterator[int]:
    """`comment_id` and the ids above it in `tree`, nearest first."""
    while comment_id is not None:
        yield comment_id
        comment_id = tree[comment_id].parent_id


def _relisted(tree: dict[int, _Link], parents: Iterable[int]) -> tuple[dict[int, int], int]:
    """Listed-reply deltas, and the top level's, when placeholders that had nothing visible
    beneath get a visible reply: each comes back into the listings, and so does every
    placeholder above it that was out of them for the same reason."""
    listed: dict[int, int] = defaultdict(int)
    top_level = 0
    back: set[int] = set()
    for parent in parents:
        for node in _above(tree, parent):
            if node in back or not tree[node].unlisted:
                break
            back.add(node)  # listed from now on
            above = tree[node].parent_id
            if above is None:
                top_level += 1
            else:
                listed[above] += 1
    return listed, top_level


# The statements of the current request, however its work is spread over tasks: the storage's
# own `statements` is shared by every request running at the time.
request_statements: ContextVar[list[int] | None] = ContextVar("request_statements", default=None)


class SQLStorage(ABC):
    """The Storage protocol over any SQL database with window functions and RETURNING."""

    dialect: str  # names the folder of its migrations
    max_list: int  # values one statement may list; longer lists are split

    def __init__(self) -> None:
        self._statements = 0

    @property
    def statements(self) -> int:
        """SQL statements executed since opening; each one also counts for its request."""
        return self._statements

    @statements.setter
    def statements(self, value: int) -> None:
        counter = request_statements.get()
        if counter is not None:
            counter[0] += value - self._statements
        self._statements = value

    async def ping(self) -> None:
        """One trivial statement: raises when the database does not answer."""
        await self._read("SELECT 1")

    # -- what a backend supplies ------------------------------------------------

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one statement on a reading connection; `?` marks parameters."""

    @abstractmethod
    async def _read_versions(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Rows of a read of thread versions, as `_read` gives them: a response cache reads
        them before every hit, so each backend has its cheapest way."""

    @abstractmethod
    async def _write(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one statement inside the current write transaction."""

    @abstractmethod
    async def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[None]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    async def _prepare_bulk_write(self) -> None:
        """Ready the current transaction for thousands of rows: imports, generated threads."""

    @abstractmethod
    async def _lock_thread(self, thread_id: int) -> bool | None:
        """Hold the thread's row for this transaction; its `locked` flag, None if absent."""

    @abstractmethod
    def _in(self, column: str, values: Sequence[Any], kind: str) -> tuple[str, list[Any]]:
        """`column` among `values` (of SQL type `kind`), and its parameters."""

    @abstractmethod
    def _time(self, moment: datetime) -> Any:
        """A time as this database takes it as a parameter."""

    @abstractmethod
    async def _apply(self, migration: migrations.Migration) -> bool:
        """Apply one migration in its own transaction unless it was; report whether it did."""

    def _parse_time(self, value: Any) -> datetime:
        return value if isinstance(value, datetime) else parse_time(value)

    # -- rows ---------------------------------------------------------------------

    def _thread(self, row: Sequence[Any]) -> ThreadRow:
        return ThreadRow(
            row[0],
            row[1],
            row[2],
            row[3],
            self._parse_time(row[4]),
            bool(row[5]),
            row[6],
            row[7],
            int(row[8]),
        )

    def _comment(self, row: Sequence[Any]) -> CommentRow:
        return CommentRow(
            id=row[0],
            thread_id=row[1],
            parent_id=row[2],
            depth=row[3],
            body=row[4],
            body_html=row[5],
            body_text=row[6],
            state=CommentState(row[7]),
            created_at=self._parse_time(row[8]),
            edited_at=self._parse_time(row[9]) if row[9] else None,
            like_count=row[10],
            reply_count=row[11],
            listed_reply_count=row[12],
            descendant_count=row[13],
            author=_user(row, 14),
        )

    def _chunks(self, items: Sequence[Any], per_item: int = 1) -> Iterable[Sequence[Any]]:
        size = self.max_list // per_item
        for start in range(0, len(items), size):
            yield items[start : start + size]

    def _keys(
        self, thread_column: str, id_column: str, keys: Sequence[tuple[int, int]]
    ) -> tuple[str, list[Any]]:
        """A WHERE clause for rows among (thread id, id) keys; callers pick the exact pairs."""
        threads, thread_params = self._in(thread_column, sorted({t for t, _ in keys}), "bigint")
        ids, id_params = self._in(id_column, sorted({i for _, i in keys}), "bigint")
        return f"WHERE {threads} AND {ids}", [*thread_params, *id_params]

    def _after_params(self, request: PageRequest) -> tuple[Any, ...]:
        if request.after is None:
            return ()
        *rest, created, ident = request.after
        moment = self._time(parse_time(str(created)))
        if request.order is CommentOrder.TOP:  # like_count appears twice in the condition
            return (rest[0], rest[0], moment, ident)
        return (moment, ident)

    # -- migrations -----------------------------------------------------------------

    async def migrate(self) -> list[str]:
        return [m.name for m in migrations.load(self.dialect) if await self._apply(m)]

    async def pending_migrations(self) -> list[str]:
        try:
            rows = await self._read("SELECT version FROM schema_migrations")
        except Exception:
            rows = []
        done = {row[0] for row in rows}
        return [m.name for m in migrations.load(self.dialect) if m.version not in done]

    # -- reads ------------------------------------------------------------------------

    async def _threads(self, column: str, values: Sequence[Any], kind: str) -> list[ThreadRow]:
        found = []
        for chunk in self._chunks(values):
            where, params = self._in(f"t.{column}", chunk, kind)
            sql = f"SELECT {_THREAD_COLUMNS} FROM threads t WHERE {where}"
            found += [self._thread(row) for row in await self._read(sql, params)]
        return found

    async def threads_by_ids(self, ids: Sequence[int]) -> list[ThreadRow | None]:
        found = {t.id: t for t in await self._threads("id", ids, "bigint")}
        return [found.get(i) for i in ids]

    async def threads_by_keys(self, keys: Sequence[str]) -> list[ThreadRow | None]:
        found = {t.key: t for t in await self._threads("key", keys, "text")}
        return [found.get(k) for k in keys]

    async def thread_page(
        self, after: int | None, limit: int, oldest_first: bool = False
    ) -> list[ThreadRow]:
        after_op, order = (">", "") if oldest_first else ("<", " DESC")
        where, params = (f"WHERE t.id {after_op} ?", [after]) if after is not None else ("", [])
        sql = f"SELECT {_THREAD_COLUMNS} FROM threads t {where} ORDER BY t.id{order} LIMIT ?"
        return [self._thread(row) for row in await self._read(sql, [*params, limit])]

    async def thread_total(self) -> int:
        rows = await self._read("SELECT COUNT(*) FROM threads")
        return int(rows[0][0])

    async def thread_versions(self, ids: Sequence[int]) -> dict[int, int]:
        versions: dict[int, int] = {}
        for chunk in self._chunks(ids):
            where, params = self._in("id", chunk, "bigint")
            sql = f"SELECT id, version FROM threads WHERE {where}"
            rows = await self._read_versions(sql, params)
            versions.update((int(row[0]), int(row[1])) for row in rows)
        return versions

    async def users_by_ids(
        self, ids: Sequence[int], written_in: Collection[CommentState] | None = None
    ) -> list[UserRow | None]:
        found: dict[int, UserRow | None] = {}
        wrote = ""
        state_params: list[Any] = []
        if written_in is not None:
            states = sorted(s.value for s in written_in)
            wrote, state_params = self._in("c.state", states, "text")
        for chunk in self._chunks(ids):
            where, params = self._in("u.id", chunk, "bigint")
            sql = f"SELECT {_USER_COLUMNS} FROM users u WHERE {where}"
            if written_in is not None:
                # Comments are looked for in the threads the user wrote in, as every statement
                # on comments names their thread.
                sql += (
                    " AND EXISTS (SELECT 1 FROM user_threads ut JOIN comments c"
                    " ON c.thread_id = ut.thread_id AND c.author_id = ut.user_id"
                    f" WHERE ut.user_id = u.id AND {wrote})"
                )
            rows = await self._read(sql, [*params, *state_params])
            found.update((row[0], _user(row)) for row in rows)
        return [found.get(i) for i in ids]

    async def comments_by_ids(self, keys: Sequence[tuple[int, int]]) -> list[CommentRow | None]:
        found: dict[tuple[int, int], CommentRow] = {}
        for chunk in self._chunks(keys, 2):
            where, params = self._keys("c.thread_id", "c.id", chunk)
            sql = f"SELECT {_COMMENT_COLUMNS} {_COMMENT_FROM} {where}"
            for row in await self._read(sql, params):
                found[(row[1], row[0])] = self._comment(row)
        return [found.get(key) for key in keys]

    async def comment_pages(self, requests: Sequence[PageRequest]) -> list[list[CommentRow]]:
        pages: dict[PageRequest, list[CommentRow]] = {}
        shapes: dict[tuple[Any, ...], list[PageRequest]] = defaultdict(list)
        for request in dict.fromkeys(requests):
            shape = (request.parent_id is None, request.order, request.after, request.limit)
            shapes[shape].append(request)
        for group in shapes.values():
            for chunk in self._chunks(group, 2):
                pages.update(await self._page_group(chunk))
        return [pages[request] for request in requests]

    async def _page_group(
        self, group: Sequence[PageRequest]
    ) -> dict[PageRequest, list[CommentRow]]:
        """One statement for pages that differ only in their thread or parent."""
        first = group[0]
        order_by = _ORDER_BY[first.order]
        after = _AFTER[first.order] if first.after is not None else ""
        top_level = first.parent_id is None
        if len(group) == 1:
            scope = "c.parent_id IS NULL" if top_level else "c.parent_id = ?"
            sql = (
                f"SELECT {_COMMENT_COLUMNS} {_COMMENT_FROM} WHERE c.thread_id = ?"
                f" AND {scope}{_LISTED}{after} ORDER BY {order_by} LIMIT ?"
            )
            params: list[Any] = [first.thread_id]
            if not top_level:
                params.append(first.parent_id)
            rows = await self._read(sql, [*params, *self._after_params(first), first.limit])
            return {first: [self._comment(row) for row in rows]}

        threads, params = self._in("c.thread_id", sorted({r.thread_id for r in group}), "bigint")
        partition = "thread_id" if top_level else "parent_id"
        if top_level:
            scope = "c.parent_id IS NULL"
        else:
            parents = sorted({r.parent_id for r in group if r.parent_id is not None})
            scope, parent_params = self._in("c.parent_id", parents, "bigint")
            params += parent_params
        sql = (
            f"SELECT {_comment_columns('page')} FROM ("
            f"SELECT c.*, ROW_NUMBER() OVER (PARTITION BY c.{partition} ORDER BY {order_by}) AS rn"
            f" FROM comments c WHERE {threads} AND {scope}{_LISTED}{after}"
            f") page LEFT JOIN users u ON u.id = page.author_id"
            f" WHERE page.rn <= ? ORDER BY page.{partition}, page.rn"
        )
        params = [*params, *self._after_params(first), first.limit]
        by_scope: dict[int, list[CommentRow]] = defaultdict(list)
        for row in await self._read(sql, params):
            comment = self._comment(row)
            by_scope[comment.thread_id if top_level else comment.parent_id or 0].append(comment)
        return {r: by_scope.get(r.thread_id if top_level else r.parent_id or 0, []) for r in group}

    async def liked_by(self, user_id: int, keys: Sequence[tuple[int, int]]) -> list[bool]:
        liked: set[tuple[int, int]] = set()
        for chunk in self._chunks(keys, 2):
            where, params = self._keys("thread_id", "comment_id", chunk)
            sql = f"SELECT thread_id, comment_id FROM likes {where} AND user_id = ?"
            liked.update((row[0], row[1]) for row in await self._read(sql, [*params, user_id]))
        return [key in liked for key in keys]

    # -- writes -------------------------------------------------------------------------

    async def upsert_user(
        self, sub: str, name: str, avatar_url: str | None, role: str = "user"
    ) -> UserRow:
        now = self._time(datetime.now(UTC))
        async with self._transaction():
            before = await self._write(
                "SELECT name, avatar_url FROM users WHERE origin = ? AND sub = ?", (TOKEN, sub)
            )
            rows = await self._write(
                "INSERT INTO users (origin, sub, name, avatar_url, role, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (origin, sub) DO UPDATE SET"
                " name = excluded.name, avatar_url = excluded.avatar_url, role = excluded.role,"
                " updated_at = excluded.updated_at"
                " RETURNING id, sub, name, avatar_url, role, origin",
                (TOKEN, sub, name, avatar_url, role, now, now),
            )
            if before and tuple(before[0]) != (name, avatar_url):
                await self._bump_author_threads(int(rows[0][0]))
        user = _user(rows[0])
        assert user is not None
        return user

    async def _bump_author_threads(self, user_id: int) -> None:
        """A new name or avatar shows in every thread the user wrote in: each one changed."""
        rows = await self._write(
            "SELECT thread_id FROM user_threads WHERE user_id = ? ORDER BY thread_id", (user_id,)
        )
        for row in rows:  # in id order, as any other such write takes them: no deadlock
            await self._bump_thread(int(row[0]))

    async def create_thread(
        self, key: str, title: str, url: str | None, created_at: datetime
    ) -> ThreadRow:
        async with self._transaction():
            thread_id = await self._create_thread(key, title, url, created_at)
            if thread_id is None:
                raise Conflict(f"a thread with key {key!r} exists", Reason.KEY_TAKEN)
            return await self._thread_row(thread_id)

    async def _create_thread(
        self, key: str, title: str, url: str | None, created_at: datetime
    ) -> int | None:
        """The new thread's id; None when the key is taken, by a concurrent writer too."""
        rows = await self._write(
            "INSERT INTO threads (key, title, url, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING RETURNING id",
            (key, title, url, self._time(created_at)),
        )
        return int(rows[0][0]) if rows else None

    async def _thread_row(self, thread_id: int) -> ThreadRow:
        sql = f"SELECT {_THREAD_COLUMNS} FROM threads t WHERE t.id = ?"
        rows = await self._write(sql, (thread_id,))
        if not rows:
            raise NotFound("no thread has this id", Reason.NO_THREAD)
        return self._thread(rows[0])

    async def _comment_row(self, key: tuple[int, int]) -> CommentRow:
        rows = await self._write(
            f"SELECT {_COMMENT_COLUMNS} {_COMMENT_FROM} WHERE c.thread_id = ? AND c.id = ?", key
        )
        if not rows:
            raise NotFound("no comment has this id", Reason.NO_COMMENT)
        return self._comment(rows[0])

    async def _hold_thread(self, thread_id: int, actor: Actor | None) -> bool:
        """Hold the thread's row until the transaction ends; whether it exists. The lock
        rule (db.policy.thread_writable) is checked here, inside every write's transaction,
        so no write slips in beside a lock. Without an actor (imports, generated threads)
        the operator writes, and a lock does not apply."""
        locked = await self._lock_thread(thread_id)
        if locked is None:
            return False
        if actor is not None and not policy.thread_writable(locked, actor):
            raise ThreadLocked(
                "this thread is locked: only moderators may change it", Reason.THREAD_LOCKED
            )
        return True

    async def _locked_comment(self, key: tuple[int, int], actor: Actor) -> CommentRow:
        """A comment, its thread held until the transaction ends and open to this actor."""
        if not await self._hold_thread(key[0], actor):
            raise NotFound("no comment has this id", Reason.NO_COMMENT)
        return await self._comment_row(key)

    async def _chain(
        self, key: tuple[int, int], missing: Reason = Reason.NO_COMMENT
    ) -> list[_Link]:
        """The comment and every comment above it, nearest first; `missing` says why a
        write that needs it refuses when there is none."""
        thread_id, comment_id = key
        rows = await self._write(_CHAIN, (thread_id, comment_id, thread_id))
        if not rows:
            raise NotFound("no comment has this id", missing)
        return [_Link(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def insert_comments(self, thread_id: int, comments: Sequence[NewComment]) -> list[int]:
        async with self._transaction():
            await self._prepare_bulk_write()
            if not await self._hold_thread(thread_id, None):
                raise NotFound(f"thread {thread_id} does not exist", Reason.NO_THREAD)
            return await self._insert_comments(thread_id, comments)

    async def _insert_comments(
        self, thread_id: int, comments: Sequence[NewComment], chain: Sequence[_Link] = ()
    ) -> list[int]:
        """Visible comments, each a reply to an earlier one, a stored one, or none; `chain`
        is a stored parent's, read already."""
        tree = {link.id: link for link in chain}  # the batch, and the stored comments above it
        unlisted: set[int] = set()  # stored placeholders with nothing visible beneath, replied to
        ids: list[int] = []
        replies: dict[int, int] = defaultdict(int)
        descendants: dict[int, int] = defaultdict(int)
        top_level = 0
        for item in comments:
            parent_id = ids[item.parent_index] if item.parent_index is not None else item.parent_id
            if parent_id is None:
                depth = 0
                top_level += 1
            else:
                if parent_id not in tree:
                    read = await self._chain((thread_id, parent_id), Reason.NO_PARENT)
                    tree.update((link.id, link) for link in read)
                if tree[parent_id].unlisted:
                    unlisted.add(parent_id)
                depth = tree[parent_id].depth + 1
                replies[parent_id] += 1
                for ancestor in _above(tree, parent_id):
                    descendants[ancestor] += 1
            rows = await self._write(
                "INSERT INTO comments (thread_id, parent_id, depth, author_id, body,"
                " body_html, body_text, created_at, edited_at, like_count)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    thread_id,
                    parent_id,
                    depth,
                    item.author_id,
                    item.body,
                    item.body_html,
                    item.body_text,
                    self._time(item.created_at),
                    self._time(item.edited_at) if item.edited_at else None,
                    item.like_count,
                ),
            )
            comment_id = int(rows[0][0])
            ids.append(comment_id)
            tree[comment_id] = _Link(comment_id, parent_id, depth, CommentState.VISIBLE.value, 0)
        # A new visible reply is listed under its parent; its ancestors were listed already,
        # since a visible parent keeps every ancestor's descendant count above zero. Only a
        # stored placeholder with nothing visible beneath (imports reach one) comes back.
        listed, relisted_top = _relisted(tree, unlisted)
        changed = set(replies) | set(descendants) | set(listed)
        await self._update_counts(
            thread_id, {i: (replies[i], replies[i] + listed[i], descendants[i]) for i in changed}
        )
        await self._bump_thread(thread_id, len(comments), top_level + relisted_top)
        authors = sorted({c.author_id for c in comments if c.author_id is not None})
        if authors:
            await self._write_many(
                "INSERT INTO user_threads (user_id, thread_id) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                [(author, thread_id) for author in authors],
            )
        return ids

    async def _update_counts(self, thread_id: int, deltas: dict[int, tuple[int, int, int]]) -> None:
        """Add (reply, listed reply, descendant) deltas to comments."""
        if not deltas:
            return
        await self._write_many(
            "UPDATE comments SET reply_count = reply_count + ?,"
            " listed_reply_count = listed_reply_count + ?,"
            " descendant_count = descendant_count + ? WHERE thread_id = ? AND id = ?",
            [(*deltas[i], thread_id, i) for i in sorted(deltas)],
        )

    async def _bump_thread(self, thread_id: int, comments: int = 0, top_level: int = 0) -> None:
        """Move the thread's counts and its version, which every write changes."""
        await self._write(
            "UPDATE threads SET comment_count = comment_count + ?,"
            " top_level_count = top_level_count + ?, version = version + 1 WHERE id = ?",
            (comments, top_level, thread_id),
        )

    async def add_comment(
        self,
        thread: ThreadRef,
        comment: NewComment,
        actor: Actor,
        parent_thread_id: int | None = None,
        max_depth: int | None = None,
    ) -> AddedComment:
        async with self._transaction():
            thread_id = await self._thread_for_comment(thread, actor)
            chain: list[_Link] = []
            if comment.parent_id is not None:
                if parent_thread_id != thread_id:
                    raise InvalidInput(
                        "the parent comment is in another thread", Reason.PARENT_IN_ANOTHER_THREAD
                    )
                chain = await self._chain((thread_id, comment.parent_id), Reason.NO_PARENT)
                parent = chain[0]
                if not parent.visible:
                    raise InvalidInput(
                        "a deleted or removed comment takes no replies", Reason.PARENT_HIDDEN
                    )
                if max_depth is not None and parent.depth + 1 > max_depth:
                    raise InvalidInput(
                        f"replies nest at most {max_depth} levels deep: this comment takes none",
                        Reason.TOO_DEEP,
                    )
            [comment_id] = await self._insert_comments(thread_id, [comment], chain)
            row = await self._comment_row((thread_id, comment_id))
            return AddedComment(row, tuple(link.id for link in reversed(chain)))

    async def _thread_for_comment(self, thread: ThreadRef, actor: Actor) -> int:
        """The id of a thread open to this actor, held for this transaction; a new key
        creates it, where the thread-creation rule let this actor open it."""
        thread_id = thread.id
        if thread_id is None:
            found = await self._write("SELECT id FROM threads WHERE key = ?", (thread.key,))
            if found:
                thread_id = int(found[0][0])
            else:
                if thread.creation_refused is not None:
                    raise Forbidden(thread.creation_refused, Reason.THREAD_CREATION_REFUSED)
                if not thread.key or not thread.title:
                    raise InvalidInput("a new thread needs a title", Reason.NO_TITLE)
                created = await self._create_thread(
                    thread.key, thread.title, thread.url, datetime.now(UTC)
                )
                if created is not None:
                    return created
                return await self._thread_for_comment(thread, actor)  # created meanwhile
        if not await self._hold_thread(thread_id, actor):
            raise NotFound("no thread has this id", Reason.NO_THREAD)
        return thread_id

    async def edit_comment(
        self,
        key: tuple[int, int],
        editor: Actor,
        body: tuple[str, str, str],
        now: datetime,
        window: timedelta,
    ) -> CommentRow:
        async with self._transaction():
            comment = await self._locked_comment(key, editor)
            if not comment.visible:
                raise InvalidInput(
                    "a deleted or removed comment cannot be edited", Reason.EDITING_HIDDEN
                )
            if not policy.is_author(editor, comment):
                raise Forbidden("only the author can edit a comment", Reason.NOT_AUTHOR)
            if not policy.edit_window_open(comment.created_at, now, window):
                raise EditWindowClosed(
                    f"comments can be edited for {int(window.total_seconds())} seconds",
                    Reason.EDIT_WINDOW_CLOSED,
                )
            if body[0] == comment.body:
                return comment
            written = comment.edited_at or comment.created_at
            await self._write(
                "INSERT INTO comment_revisions"
                " (thread_id, comment_id, body, written_at, replaced_at) VALUES (?, ?, ?, ?, ?)",
                (*key, comment.body, self._time(written), self._time(now)),
            )
            await self._write(
                "UPDATE comments SET body = ?, body_html = ?, body_text = ?, edited_at = ?"
                " WHERE thread_id = ? AND id = ?",
                (*body, self._time(now), *key),
            )
            await self._bump_thread(key[0])
            return await self._comment_row(key)

    async def hide_comment(
        self, key: tuple[int, int], actor: Actor, state: CommentState, reason: str | None = None
    ) -> CommentRow:
        async with self._transaction():
            comment = await self._locked_comment(key, actor)
            if state is CommentState.REMOVED and not policy.can_moderate(actor):
                raise Forbidden("only a moderator can remove a comment", Reason.NOT_MODERATOR)
            if not comment.visible:
                return comment  # hiding twice changes nothing; a deleted comment has no author
            if state is CommentState.DELETED and not policy.can_delete(actor, comment):
                raise Forbidden(
                    "only the author or a moderator can delete a comment",
                    Reason.NOT_AUTHOR_OR_MODERATOR,
                )
            own = state is CommentState.DELETED and policy.is_author(actor, comment)
            await self._hide(comment, state, None if own else actor.user_id, reason)
            return await self._comment_row(key)

    async def _hide(
        self,
        comment: CommentRow,
        state: CommentState,
        moderated_by: int | None,
        reason: str | None = None,
    ) -> None:
        """Make a visible comment a placeholder, keeping every count exact."""
        key = (comment.thread_id, comment.id)
        if state is CommentState.DELETED:
            # What its author deleted is gone, revisions included; the place stays.
            await self._write(
                "UPDATE comments SET state = 'DELETED', author_id = NULL, body = '',"
                " body_html = '', body_text = '', moderated_by = ?"
                " WHERE thread_id = ? AND id = ?",
                (moderated_by, *key),
            )
            await self._write(
                "DELETE FROM comment_revisions WHERE thread_id = ? AND comment_id = ?", key
            )
        else:
            await self._write(
                "UPDATE comments SET state = 'REMOVED', moderated_by = ?, removed_reason = ?"
                " WHERE thread_id = ? AND id = ?",
                (moderated_by, reason, *key),
            )
        await self._lose_visibility(comment)

    async def _lose_visibility(self, comment: CommentRow) -> None:
        """Counts after a visible comment was hidden: it no longer counts as visible anywhere,
        and it, or an ancestor left with nothing visible beneath, may leave the listings."""
        thread_id = comment.thread_id
        deltas: dict[int, tuple[int, int, int]] = {}  # (reply, listed reply, descendant)
        leaves_listing = comment.descendant_count == 0
        if comment.parent_id is not None:
            for link in await self._chain((thread_id, comment.parent_id)):  # nearest first
                is_parent = link.id == comment.parent_id
                deltas[link.id] = (-int(is_parent), -int(leaves_listing), -1)
                leaves_listing = not link.visible and link.descendant_count == 1
        await self._update_counts(thread_id, deltas)
        await self._bump_thread(thread_id, -1, -int(leaves_listing))

    async def set_like(self, key: tuple[int, int], actor: Actor, liked: bool) -> CommentRow:
        user_id = actor.user_id
        async with self._transaction():
            comment = await self._locked_comment(key, actor)
            if not comment.visible:
                raise NotFound("this comment was deleted or removed", Reason.LIKING_HIDDEN)
            if liked:
                changed = await self._write(
                    "INSERT INTO likes (thread_id, comment_id, user_id, created_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
                    (*key, user_id, self._time(datetime.now(UTC))),
                )
            else:
                changed = await self._write(
                    "DELETE FROM likes WHERE thread_id = ? AND comment_id = ? AND user_id = ?"
                    " RETURNING 1",
                    (*key, user_id),
                )
            if not changed:
                return comment
            # A like row exists only for a like counted here, so the count stays >= 0.
            await self._write(
                "UPDATE comments SET like_count = like_count + ? WHERE thread_id = ? AND id = ?",
                (1 if liked else -1, *key),
            )
            await self._bump_thread(key[0])
            return await self._comment_row(key)

    async def lock_thread(self, thread_id: int, locked: bool) -> ThreadRow:
        async with self._transaction():
            if await self._lock_thread(thread_id) is None:
                raise NotFound("no thread has this id", Reason.NO_THREAD)
            await self._write(
                "UPDATE threads SET locked = ?, version = version + 1 WHERE id = ?",
                (locked, thread_id),
            )
            return await self._thread_row(thread_id)

    # -- imports and exports ---------------------------------------------------------------

    async def imported_ids(self, key: str, source: str) -> dict[str, int]:
        rows = await self._read(
            "SELECT s.source_id, s.comment_id FROM import_sources s"
            " JOIN threads t ON t.id = s.thread_id WHERE t.key = ? AND s.source = ?",
            (key, source),
        )
        return {row[0]: int(row[1]) for row in rows}

    async def import_thread(self, thread: ImportedThread) -> ImportResult:
        async with self._transaction():
            thread_id, created = await self._import_target(thread)
            users, new_users = await self._import_users(thread.users)
            ids: list[int] = []
            if thread.comments:
                ids = await self._insert_comments(
                    thread_id, [_new_comment(item, users) for item in thread.comments]
                )
                await self._import_history(thread_id, thread, ids, users)
        return ImportResult(thread_id, created, new_users, ids)

    async def _import_history(
        self,
        thread_id: int,
        thread: ImportedThread,
        ids: Sequence[int],
        users: dict[Identity, int],
    ) -> None:
        """What the imported comments went through: edits, likes, hiding; and their ids."""
        pairs = list(zip(thread.comments, ids, strict=True))
        revisions = [
            (thread_id, cid, r.body, self._time(r.written_at), self._time(r.replaced_at))
            for item, cid in pairs
            for r in item.revisions
        ]
        if revisions:
            await self._write_many(
                "INSERT INTO comment_revisions (thread_id, comment_id, body, written_at,"
                " replaced_at) VALUES (?, ?, ?, ?, ?)",
                revisions,
            )
        now = self._time(datetime.now(UTC))
        likes = [(thread_id, cid, users[u], now) for item, cid in pairs for u in item.liked_by]
        if likes:
            await self._write_many(
                "INSERT INTO likes (thread_id, comment_id, user_id, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                likes,
            )
        # Inserted visible, then hidden one by one as the API hides them: counts stay exact.
        for item, cid in pairs:
            if item.state is not CommentState.VISIBLE:
                moderator = users[item.moderated_by] if item.moderated_by else None
                row = await self._comment_row((thread_id, cid))
                await self._hide(row, item.state, moderator, item.removed_reason)
        await self._write_many(
            "INSERT INTO import_sources (thread_id, source, source_id, comment_id)"
            " VALUES (?, ?, ?, ?)",
            [(thread_id, thread.source, item.source_id, cid) for item, cid in pairs],
        )

    async def _import_target(self, thread: ImportedThread) -> tuple[int, bool]:
        """The thread with the import's key, held for this transaction; whether it is new."""
        created = await self._create_thread(thread.key, thread.title, thread.url, thread.created_at)
        if created is not None:
            if thread.locked:
                await self._write("UPDATE threads SET locked = ? WHERE id = ?", (True, created))
            return created, True
        rows = await self._write("SELECT id FROM threads WHERE key = ?", (thread.key,))
        thread_id = int(rows[0][0])
        await self._lock_thread(thread_id)
        return thread_id, False

    async def _import_users(self, users: Sequence[NewUser]) -> tuple[dict[Identity, int], int]:
        """Ids by identity, and how many users are new: a user who exists keeps name, avatar
        and role."""
        now = self._time(datetime.now(UTC))
        new = 0
        subs: dict[str, set[str]] = defaultdict(set)  # origin -> subs
        for user in users:
            rows = await self._write(
                "INSERT INTO users (origin, sub, name, avatar_url, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin, sub) DO NOTHING RETURNING id",
                (user.origin, user.sub, user.name, user.avatar_url, now, now),
            )
            new += len(rows)
            subs[user.origin].add(user.sub)
        ids: dict[Identity, int] = {}
        for origin in sorted(subs):
            for chunk in self._chunks(sorted(subs[origin])):
                where, params = self._in("sub", chunk, "text")
                rows = await self._write(
                    f"SELECT sub, id FROM users WHERE origin = ? AND {where}", [origin, *params]
                )
                ids.update(((origin, row[0]), int(row[1])) for row in rows)
        return ids, new

    async def thread_dump(self, thread_id: int) -> ThreadDump | None:
        # Inside a write transaction holding the thread: its statements see one state.
        async with self._transaction():
            if await self._lock_thread(thread_id) is None:
                return None
            thread = await self._thread_row(thread_id)
            rows = await self._write(
                f"SELECT {_COMMENT_COLUMNS}, c.moderated_by, c.removed_reason {_COMMENT_FROM}"
                " WHERE c.thread_id = ? ORDER BY c.id",
                (thread_id,),
            )
            likes: dict[int, list[int]] = defaultdict(list)
            for comment_id, user_id in await self._write(
                "SELECT comment_id, user_id FROM likes WHERE thread_id = ?"
                " ORDER BY comment_id, user_id",
                (thread_id,),
            ):
                likes[comment_id].append(user_id)
            revisions: dict[int, list[Revision]] = defaultdict(list)
            for comment_id, body, written_at, replaced_at in await self._write(
                "SELECT comment_id, body, written_at, replaced_at FROM comment_revisions"
                " WHERE thread_id = ? ORDER BY comment_id, id",
                (thread_id,),
            ):
                revisions[comment_id].append(
                    Revision(body, self._parse_time(written_at), self._parse_time(replaced_at))
                )
            comments = [self._comment(row) for row in rows]
            users = {c.author.id: c.author for c in comments if c.author is not None}
            moderation = {row[0]: (row[20], row[21]) for row in rows if row[20] or row[21]}
            named = {m for m, _ in moderation.values() if m} | {
                u for ids in likes.values() for u in ids
            }
            missing = sorted(named - set(users))
            for chunk in self._chunks(missing):
                where, params = self._in("u.id", chunk, "bigint")
                for row in await self._write(
                    f"SELECT {_USER_COLUMNS} FROM users u WHERE {where}", params
                ):
                    user = _user(row)
                    assert user is not None
                    users[user.id] = user
        return ThreadDump(thread, comments, users, dict(likes), dict(revisions), moderation)
