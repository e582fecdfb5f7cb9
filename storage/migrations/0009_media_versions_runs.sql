-- Schema version 9: a media-only edit is a whole version, and the media worker's last run is recorded.
-- `message_versions.media` holds the media JSON of the version kept (as `messages.media`), so an
-- earlier version names its file by `file_id` (`message_media` keeps that file linked). Versions kept
-- before v9 are text edits (a media-only edit kept none then): they take the message's media now, the
-- best known.
ALTER TABLE message_versions ADD COLUMN media TEXT;
UPDATE message_versions SET media = (
    SELECT m.media FROM messages m WHERE m.channel_id = message_versions.channel_id
    AND m.message_id = message_versions.message_id);

-- The media worker's last run (bot/media.py), one row: when it finished, why it stopped early (NULL:
-- it ran to the end), whether that was a full media disk, and since when downloads have been paused by
-- one (the first full-disk run since the last run that ran to the end), for /status.
CREATE TABLE media_runs (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    finished_at  TEXT NOT NULL,
    stopped      TEXT,
    disk_full    INTEGER NOT NULL DEFAULT 0,
    full_since   TEXT
);
