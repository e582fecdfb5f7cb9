-- Schema version 7 (written on a branch beside 0005 and 0006, numbered to follow them):
-- `chanwatch stats` and /status count forward sightings from this partial index instead of reading
-- every message row (270 ms warm on a million-message archive with 25-byte raw JSON, more with
-- Telegram's real rows, on the thread the poller writes through). It holds only forwards.
CREATE INDEX messages_forwards ON messages (post_id) WHERE relation = 'forward';
