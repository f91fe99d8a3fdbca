-- What imports remember: each imported comment's id at its source, so that running an
-- import again adds nothing. Distributed by thread_id on Citus, like the comments.
CREATE TABLE import_sources (
    thread_id   BIGINT NOT NULL REFERENCES threads (id),
    source      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    comment_id  BIGINT NOT NULL,
    PRIMARY KEY (thread_id, source, source_id)
);

-- The threads each user wrote in: a new name or avatar changes how those threads read.
-- On Citus, distributed by user_id.
CREATE TABLE user_threads (
    user_id    BIGINT NOT NULL REFERENCES users (id),
    thread_id  BIGINT NOT NULL REFERENCES threads (id),
    PRIMARY KEY (user_id, thread_id)
);
INSERT INTO user_threads (user_id, thread_id)
    SELECT DISTINCT author_id, thread_id FROM comments WHERE author_id IS NOT NULL;
