-- Where each user's identity comes from: `token` for the host site's users, who sign in with
-- its tokens, or the import that brought them (`disqus`, `wordpress`, `isso`, `json`). A
-- token's `sub` names a user of origin `token` only: no token speaks for an imported author.
ALTER TABLE users ADD COLUMN origin TEXT NOT NULL DEFAULT 'token';
ALTER TABLE users DROP CONSTRAINT users_sub_key;

-- Imports named their users `import:<format>:<id>`, among the tokens' subs: they move over
-- to their own origin, without a role (a token that claimed one may have given it one).
UPDATE users SET
    origin = split_part(sub, ':', 2),
    sub = substr(sub, 9 + length(split_part(sub, ':', 2))),
    role = 'user'
WHERE starts_with(sub, 'import:') AND strpos(substr(sub, 8), ':') > 1
    AND split_part(sub, ':', 2) <> 'token';

ALTER TABLE users ADD CONSTRAINT users_origin_sub_key UNIQUE (origin, sub);
