-- Schema version 14: the amplification report (storage/reports.py) reads a million-message archive
-- from indexes alone instead of from the rows (50 s before these, on bench/report.py's archive):
-- - `messages_post` also holds the channel, relation and date of each sighting, so joining a post
--   to its sightings (who carried it, how, how late) never reads the message row with its raw JSON;
--   it still serves every lookup by post_id, so it replaces the old index rather than adding one;
-- - `posts_origin` lists each origin channel's posts by date (with the `edited` flag): the report's
--   window and a channel's own posts are ranges of it, instead of a scan of `posts` per amplifier;
-- - `messages_channel_day` counts a channel's messages per UTC day (the report's timeline) in index
--   order: grouped by its very expression, the count needs no sort of the messages (0.25 s for 1M
--   messages, against 1.3 s grouping by day over an index on the date alone).
DROP INDEX messages_post;
CREATE INDEX messages_post ON messages (post_id, channel_id, relation, date);
CREATE INDEX posts_origin ON posts (origin_channel_id, date, edited);
CREATE INDEX messages_channel_day ON messages (channel_id, substr(date, 1, 10), date);
