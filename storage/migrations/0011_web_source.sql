-- Schema version 11: the web-preview source (issue #15). A channel is read through the API or its
-- public web preview (t.me/s/<name>); `source` forces one for this channel, NULL follows
-- CHANWATCH_SOURCE. Channels the web reader knows only by username are placeholder rows (negative
-- ids, storage/identity.py) until the name resolves; the lower(username) index finds them.
ALTER TABLE channels ADD COLUMN source TEXT CHECK (source IS NULL OR source IN ('api', 'web'));
