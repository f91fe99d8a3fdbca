-- Where each user's identity comes from: `token` for the host site's users, who sign in with
-- its tokens, or the import that brought them (`disqus`, `wordpress`, `isso`, `json`). A
-- token's `sub` names a user of origin `token` only: no token speaks for an imported author.
-- SQLite cannot drop the old UNIQUE (sub), so the table is built anew under the same ids;
-- the references to it are checked when the migration commits.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE users_before AS SELECT * FROM users;
DROP TABLE users;
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    origin      TEXT NOT NULL DEFAULT 'token',
    sub         TEXT NOT NULL,
    name        TEXT NOT NULL,
    avatar_url  TEXT,
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (origin, sub)
);
INSERT INTO users (id, sub, name, avatar_url, role, created_at, updated_at)
    SELECT id, sub, name, avatar_url, role, created_at, updated_at FROM users_before;
DROP TABLE users_before;

-- Imports named their users `import:<format>:<id>`, among the tokens' subs: they move over
-- to their own origin, without a role (a token that claimed one may have given it one).
UPDATE users SET
    origin = substr(sub, 8, instr(substr(sub, 8), ':') - 1),
    sub = substr(sub, 8 + instr(substr(sub, 8), ':')),
    role = 'user'
WHERE substr(sub, 1, 7) = 'import:' AND instr(substr(sub, 8), ':') > 1
    AND substr(sub, 8, instr(substr(sub, 8), ':') - 1) <> 'token';
