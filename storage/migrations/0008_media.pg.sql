-- Schema version 8: the media store and its download queue (storage/media_queue.py,
-- (PostgreSQL: BIGINT integers, as Telegram's file ids pass 2^31; no WITHOUT ROWID.)
-- storage/media_store.py). Nothing here is filled for older messages: ingest queues the files of the
-- messages it stores from now on.

-- The content store: one row per distinct content, named by its SHA-256. Two Telegram files with
-- identical bytes share one row and one file.
CREATE TABLE media_files (
    sha256     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    mime_type  TEXT,
    path       TEXT NOT NULL,                  -- relative to the media directory: ab/cd/abcd….ext
    stored_at  TEXT NOT NULL
);

-- The download queue: one row per Telegram file (Photo.id / Document.id), however many messages
-- carry it. File references are never stored (they expire): the worker re-reads the message named
-- here, the first seen carrying the file, or any other in message_media when that one is gone.
CREATE TABLE tg_files (
    file_id     BIGINT PRIMARY KEY,
    kind        TEXT NOT NULL,                 -- photo, video, document, ... (a web page's photo: photo)
    dc_id       BIGINT,
    size        BIGINT,
    mime_type   TEXT,
    file_name   TEXT,
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'done', 'skipped', 'failed')),
    sha256      TEXT REFERENCES media_files (sha256) DEFERRABLE,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,                          -- why it failed or was skipped
    retry_at    TEXT,                          -- a failed file is tried again after this
    queued_at   TEXT NOT NULL,
    done_at     TEXT,
    channel_id  BIGINT NOT NULL,
    message_id  BIGINT NOT NULL,
    CHECK (state != 'done' OR sha256 IS NOT NULL),
    FOREIGN KEY (channel_id, message_id) REFERENCES messages (channel_id, message_id) DEFERRABLE
);
CREATE INDEX tg_files_due ON tg_files (queued_at) WHERE state IN ('queued', 'failed');

-- Which messages carry which files. Rows are never deleted: a media-only edit (a photo replaced by
-- a video) sets `replaced_at` on the old link and adds the new one, so the old file stays linked.
-- The current file at a position has replaced_at NULL. A message carries one file (position 0; a
-- web page's preview photo too; an album part is its own message); a file it carried before and
-- carries again gets its row back (replaced_at NULL), hence the key on the file, not the position.
CREATE TABLE message_media (
    channel_id   BIGINT NOT NULL,
    message_id   BIGINT NOT NULL,
    file_id      BIGINT NOT NULL REFERENCES tg_files (file_id) DEFERRABLE,
    position     BIGINT NOT NULL DEFAULT 0,
    linked_at    TEXT NOT NULL,
    replaced_at  TEXT,
    PRIMARY KEY (channel_id, message_id, file_id),
    FOREIGN KEY (channel_id, message_id) REFERENCES messages (channel_id, message_id) DEFERRABLE
);
CREATE UNIQUE INDEX message_media_current ON message_media (channel_id, message_id, position)
    WHERE replaced_at IS NULL;
CREATE INDEX message_media_file ON message_media (file_id);
