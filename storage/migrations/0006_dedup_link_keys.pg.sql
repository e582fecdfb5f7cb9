-- Schema version 6: every dedup link is a key in post_keys (see storage/dedup.py), so a message finds
-- (PostgreSQL: INSERT ... ON CONFLICT DO NOTHING instead of SQLite's INSERT OR IGNORE.)
-- every post it belongs to whatever order things arrived in. Some kinds of key are new; this writes
-- them for what the archive holds already:
-- * copies are found by a text's fingerprint stated within a window of dates: a post's own
--   fingerprint and date (the new index posts_fingerprint_date; posts_fingerprint goes), and a copy
--   mark `copy:<fingerprint>:<date>` for each other date a message of it stated the same text at (a
--   forward states it at its original's date); 8 is dedup.COPY_MIN_WORDS;
-- * `album:<channel>:<grouped_id>` for album parts, instead of a query for a sibling per part;
-- * `tgfwd:<origin>:<fingerprint>` for forwards without a post id (Telegram Desktop exports), which
--   until v6 claimed the `tgtext:` key that the origin channel's own message with that text claims.
DROP INDEX posts_fingerprint;
CREATE INDEX posts_fingerprint_date ON posts (fingerprint, date);
INSERT INTO post_keys (key, post_id)
SELECT 'copy:' || p.fingerprint || ':' || coalesce(m.fwd_date, m.date), m.post_id
FROM messages m JOIN posts p ON p.id = m.post_id
WHERE p.word_count >= 8 AND p.fingerprint IS NOT NULL AND m.text = p.text
  AND coalesce(m.fwd_date, m.date) != p.date
ON CONFLICT DO NOTHING;
INSERT INTO post_keys (key, post_id)
SELECT 'album:' || channel_id || ':' || grouped_id, post_id FROM messages WHERE grouped_id IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO post_keys (key, post_id)
SELECT 'tgfwd:' || substr(k.key, 8), k.post_id
FROM messages m JOIN post_keys k ON k.post_id = m.post_id AND k.key LIKE 'tgtext:' || m.fwd_from_id || ':%'
WHERE m.fwd_from_type = 'channel' AND m.fwd_from_id IS NOT NULL AND m.fwd_channel_post IS NULL
ON CONFLICT DO NOTHING;
