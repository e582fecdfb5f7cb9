-- Schema version 13: alerts printed in the log while no bot is configured (issue #15). `logged_at`
-- is when the daemon logged a pending alert, so each is logged once, across restarts too; a bot
-- configured later still sends it (sent_at stays the delivery).
ALTER TABLE alerts ADD COLUMN logged_at TEXT;
