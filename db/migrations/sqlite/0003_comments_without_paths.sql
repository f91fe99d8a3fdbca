-- Comments keep their parent and no list of ancestors: a materialised `path` made each
-- comment's row, and its index entry, grow with its depth, so that a deep chain took room
-- quadratic in its length. A write that needs the comments above one walks up the parents
-- (WITH RECURSIVE), one row per level. Nothing else changes: every count stays as it was.
DROP INDEX comments_by_path;
ALTER TABLE comments DROP COLUMN path;
