-- Schema version 5 here (numbered 0007 to follow the dedup branch's 0005 and 0006 once merged):
-- `chanwatch stats` and /status count forward sightings from this partial index instead of reading
-- every message row (270 ms warm on a million-message archive with 25-byte raw JSON, more with
-- Telegram's real rows, on the thread the poller writes through). It holds only forwards.
CREATE INDEX messages_forwards ON messages (post_id) WHERE relation = 'forward';
