-- Schema version 10: the complete record (issue #14) — engagement over time, whole versions,
-- (PostgreSQL: BIGINT ids and counts; no WITHOUT ROWID; the date 14 days ago with to_char.)
-- deletion intervals, the slow deletion sweep.

-- Engagement readings: one row per reading of one message (views, forwards, replies, reactions as
-- counts per reaction). Written at first sight, by the engagement job on its widening schedule
-- (storage/engagement.py) and whenever a re-read message shows other counts. Never an edit.
CREATE TABLE message_stats (
    channel_id  BIGINT NOT NULL,
    message_id  BIGINT NOT NULL,
    at          TEXT NOT NULL,                 -- when the counts were read
    views       BIGINT,
    forwards    BIGINT,
    replies     BIGINT,
    reactions   TEXT,                          -- JSON {"👍": 12, "custom:5368…": 3, "paid": 1}; NULL: unknown
    PRIMARY KEY (channel_id, message_id, at),
    FOREIGN KEY (channel_id, message_id) REFERENCES messages (channel_id, message_id) DEFERRABLE
);

-- The latest reactions (as message_stats.reactions), beside views/forwards/replies.
ALTER TABLE messages ADD COLUMN reactions TEXT;
-- When the next engagement reading is due; NULL: none (older than the schedule, or deleted).
ALTER TABLE messages ADD COLUMN stats_due TEXT;
CREATE INDEX messages_stats_due ON messages (stats_due) WHERE stats_due IS NOT NULL;
-- Deletion interval: the last time Telegram showed the message present (any read that returned it),
-- and `deleted_at`, the first time it was seen missing; `deleted_via` says how (recheck, sweep, update).
-- Before v10 only first_seen is known to have seen it present.
ALTER TABLE messages ADD COLUMN last_seen TEXT;
ALTER TABLE messages ADD COLUMN deleted_via TEXT;
UPDATE messages SET last_seen = first_seen;
UPDATE messages SET deleted_via = 'recheck' WHERE deleted_at IS NOT NULL;

-- A version keeps the whole message as Telegram sent it (raw JSON), not only text, entities, media.
-- Versions kept before v10 have none (the earlier raw message was overwritten).
ALTER TABLE message_versions ADD COLUMN raw TEXT;

-- The slow deletion sweep (bot/sweep.py): where it is in each channel (the next ids it checks are
-- below `sweep_before`; NULL: start from the top) and when its current round began.
ALTER TABLE channels ADD COLUMN sweep_before BIGINT;
ALTER TABLE channels ADD COLUMN sweep_started TEXT;

-- Messages young enough for the engagement schedule get a first reading soon.
UPDATE messages SET stats_due = first_seen
WHERE deleted_at IS NULL
  AND date > to_char(now() AT TIME ZONE 'UTC' - interval '14 days', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"');
