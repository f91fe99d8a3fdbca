-- Users come from the host site's tokens: `sub` is the host's id for them.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    sub         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    avatar_url  TEXT,
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- One thread per page of the host site, found by its `key`.
CREATE TABLE threads (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    url              TEXT,
    created_at       TEXT NOT NULL,
    locked           INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    comment_count    INTEGER NOT NULL DEFAULT 0,  -- visible comments, replies included
    top_level_count  INTEGER NOT NULL DEFAULT 0,  -- listed comments without a parent
    version          INTEGER NOT NULL DEFAULT 0   -- bumped by every write to the thread
);

-- `path` lists the ancestors' ids, root first, each zero-padded to 12 digits and
-- followed by '/': '' for a top-level comment, so a subtree is a prefix range.
-- A comment is *listed* while it is visible or has visible comments beneath it: a
-- deleted or removed comment then stays in place as a placeholder for its replies.
CREATE TABLE comments (
    id                INTEGER PRIMARY KEY,
    thread_id         INTEGER NOT NULL REFERENCES threads (id),
    parent_id         INTEGER REFERENCES comments (id),
    depth             INTEGER NOT NULL CHECK (depth >= 0),
    path              TEXT NOT NULL,
    author_id         INTEGER REFERENCES users (id),
    body              TEXT NOT NULL,
    body_html         TEXT NOT NULL,
    body_text         TEXT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'VISIBLE' CHECK (state IN ('VISIBLE', 'DELETED', 'REMOVED')),
    created_at        TEXT NOT NULL,
    edited_at         TEXT,
    like_count        INTEGER NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    reply_count       INTEGER NOT NULL DEFAULT 0 CHECK (reply_count >= 0),        -- visible, direct
    listed_reply_count INTEGER NOT NULL DEFAULT 0 CHECK (listed_reply_count >= 0), -- listed, direct
    descendant_count  INTEGER NOT NULL DEFAULT 0 CHECK (descendant_count >= 0),  -- visible, all
    moderated_by      INTEGER REFERENCES users (id),
    removed_reason    TEXT
);

-- OLDEST and NEWEST pages of a parent's replies (or a thread's top level), and TOP.
CREATE INDEX comments_by_parent_time ON comments (thread_id, parent_id, created_at, id);
CREATE INDEX comments_by_parent_top ON comments (thread_id, parent_id, like_count DESC, created_at, id);
CREATE INDEX comments_by_path ON comments (thread_id, path);

CREATE TABLE likes (
    thread_id   INTEGER NOT NULL REFERENCES threads (id),
    comment_id  INTEGER NOT NULL REFERENCES comments (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (thread_id, comment_id, user_id)
);
CREATE INDEX likes_by_user ON likes (thread_id, user_id, comment_id);

-- The bodies an edit replaced, oldest first.
CREATE TABLE comment_revisions (
    id          INTEGER PRIMARY KEY,
    thread_id   INTEGER NOT NULL REFERENCES threads (id),
    comment_id  INTEGER NOT NULL REFERENCES comments (id),
    body        TEXT NOT NULL,
    written_at  TEXT NOT NULL,
    replaced_at TEXT NOT NULL
);
CREATE INDEX comment_revisions_by_comment ON comment_revisions (thread_id, comment_id, id);
