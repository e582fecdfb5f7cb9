-- Schema version 12: a channel's subscriber count as last read (issue #15). The web preview's header
-- shows it ("12.3K subscribers", written out: approximate as views are); `subscribers_at` is when.
ALTER TABLE channels ADD COLUMN subscribers INTEGER;
ALTER TABLE channels ADD COLUMN subscribers_at TEXT;
