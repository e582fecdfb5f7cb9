-- Schema version 16: the id Telegram deduplicates an alert's messages by (issue #17). Portable SQL.
-- `random_id` (signed 64-bit) is fixed when the dispatcher first claims the row for sending and never
-- changes after: a second dispatcher during a takeover sends the same message with the same id, and
-- Telegram refuses the repeat (RANDOM_ID_DUPLICATE), so no alert reaches its chat twice. NULL until
-- then (rows written before this version too).
ALTER TABLE alerts ADD COLUMN random_id BIGINT;
