-- Schema version 5: `is:edited` reads `posts.edited`: an original sighting of the post was edited,
-- either as we saw its text change (a kept version: until v4 `edited_at` was all `is:edited` knew) or
-- as Telegram showed it when we first archived it. A message counts as shown edited when it has an
-- `edit_date` and its raw message does not say `"edit_hide": true`, the flag Telegram sets for edits
-- nobody sees (a link preview refreshed), which most messages of real channels carry. Ingest keeps the
-- flag from now on (storage.ingest_rows.edited_sql); the partial index lists the edited posts by date, so
-- `is:edited` alone reads only them.
ALTER TABLE posts ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
UPDATE posts SET edited = 1 WHERE id IN (
    SELECT m.post_id FROM messages m WHERE m.relation = 'original' AND (
        (m.edit_date IS NOT NULL AND json_type(m.raw, '$.edit_hide') IS NOT 'true')
        OR EXISTS (SELECT 1 FROM message_versions v
                   WHERE v.channel_id = m.channel_id AND v.message_id = m.message_id))
);
CREATE INDEX posts_edited ON posts (date) WHERE edited = 1;
