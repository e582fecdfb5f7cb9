-- Schema version 5: `is:edited` reads `posts.edited`, which also holds for a post whose original
-- Telegram showed as edited before we first archived it (until v4 only `edited_at` counted: a text that
-- changed after it was archived). A message counts as shown edited when it has an `edit_date` and its
-- raw message does not say `"edit_hide": true`, the flag Telegram sets for edits nobody sees (a link
-- preview refreshed), which most messages of real channels carry. Ingest keeps the flag from now on;
-- the partial index lists the edited posts by date, so `is:edited` alone reads only them.
ALTER TABLE posts ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
UPDATE posts SET edited = 1 WHERE edited_at IS NOT NULL OR id IN (
    SELECT post_id FROM messages
    WHERE relation = 'original' AND edit_date IS NOT NULL AND json_type(raw, '$.edit_hide') IS NOT 'true'
);
CREATE INDEX posts_edited ON posts (date) WHERE edited = 1;
