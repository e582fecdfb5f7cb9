-- Schema version 5: `chanwatch stats` and /status count forwards and edited messages from these
-- partial indexes instead of reading every message row (0.3 s on a million-message archive with
-- short rows, and more with Telegram's raw JSON in each row, on the thread the poller writes through).
CREATE INDEX messages_forwards ON messages (post_id) WHERE relation = 'forward';
CREATE INDEX messages_edited ON messages (post_id) WHERE edit_date IS NOT NULL;
