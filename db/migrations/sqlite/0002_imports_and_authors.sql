-- What imports remember: each imported comment's id at its source, so that running an
-- import again adds nothing.
CREATE TABLE import_sources (
    thread_id   INTEGER NOT NULL REFERENCES threads (id),
    source      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    comment_id  INTEGER NOT NULL,
    PRIMARY KEY (thread_id, source, source_id)
);

-- The threads each user wrote in: a new name or avatar changes how those threads read.
CREATE TABLE user_threads (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    thread_id  INTEGER NOT NULL REFERENCES threads (id),
    PRIMARY KEY (user_id, thread_id)
);
INSERT INTO user_threads (user_id, thread_id)
    SELECT DISTINCT author_id, thread_id FROM comments WHERE author_id IS NOT NULL;
