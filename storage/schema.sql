-- chanwatch archive, schema version 1. Migrations live in storage/migrations/NNNN_*.sql and are
-- applied forward-only by storage/database.py; this file is migration 0001.
-- Dates are ISO-8601 UTC text ('2025-12-17T10:00:00+00:00'): lexical order is time order.

CREATE TABLE channels (
    id            INTEGER PRIMARY KEY,          -- Telegram's bare positive channel id
    username      TEXT,                         -- without '@'; NULL for channels without one
    title         TEXT,
    access_hash   INTEGER,
    watched       INTEGER NOT NULL DEFAULT 0,
    cursor        INTEGER NOT NULL DEFAULT 0,   -- highest message id stored
    last_poll     TEXT,
    last_success  TEXT,
    status        TEXT NOT NULL DEFAULT 'ok'
                  CHECK (status IN ('ok', 'private', 'not_found', 'banned', 'error')),
    status_detail TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,   -- consecutive failed polls, for backoff
    retry_at      TEXT,                         -- no poll before this (backoff, flood wait)
    backfill_before INTEGER,                    -- oldest message id a backfill has reached
    backfill_done INTEGER NOT NULL DEFAULT 0,   -- backfill reached the start (or its --since)
    added_at      TEXT
);
CREATE INDEX channels_username ON channels (lower(username));

-- One row per canonical post: the content, however many channels carried it.
CREATE TABLE posts (
    id                 INTEGER PRIMARY KEY,
    key                TEXT NOT NULL UNIQUE,    -- see storage/dedup.py
    origin_channel_id  INTEGER,
    origin_username    TEXT,
    origin_title       TEXT,                    -- channel title, or the hidden sender's name
    origin_message_id  INTEGER,
    origin_author      TEXT,                    -- post_author signature
    date               TEXT NOT NULL,           -- original date
    text               TEXT NOT NULL DEFAULT '',
    entities           TEXT NOT NULL DEFAULT '[]',
    media_kind         TEXT,
    language           TEXT,
    fingerprint        TEXT,                    -- hash of the folded words (storage/dedup.py)
    word_count         INTEGER NOT NULL DEFAULT 0,
    first_seen         TEXT NOT NULL,
    text_date          TEXT,                    -- edit_date of the version `text` holds
    edited_at          TEXT,                    -- last time the text changed after first seen
    -- derived search columns (storage/text.py), read by posts_fts as its external content
    words              TEXT NOT NULL DEFAULT '',
    stems              TEXT NOT NULL DEFAULT '',
    tags               TEXT NOT NULL DEFAULT ''
);
CREATE INDEX posts_date ON posts (date);
CREATE INDEX posts_fingerprint ON posts (fingerprint);

-- Every key that leads to a post: its canonical key, and the own key of each message that joined it
-- (album members, each forwarded part of an album), so dedup finds the post whatever arrives first.
CREATE TABLE post_keys (
    key      TEXT PRIMARY KEY,
    post_id  INTEGER NOT NULL REFERENCES posts (id)
) WITHOUT ROWID;
CREATE INDEX post_keys_post ON post_keys (post_id);

-- One row per Telegram message seen in a channel (a sighting of a post).
CREATE TABLE messages (
    channel_id           INTEGER NOT NULL REFERENCES channels (id),
    message_id           INTEGER NOT NULL,
    post_id              INTEGER NOT NULL REFERENCES posts (id),
    relation             TEXT NOT NULL CHECK (relation IN ('original', 'forward', 'copy')),
    date                 TEXT NOT NULL,
    edit_date            TEXT,
    text                 TEXT NOT NULL DEFAULT '',
    entities             TEXT NOT NULL DEFAULT '[]',
    views                INTEGER,
    forwards             INTEGER,
    replies              INTEGER,
    reply_to             INTEGER,
    grouped_id           INTEGER,
    post_author          TEXT,
    media                TEXT,                  -- JSON of storage.records.Media
    fwd_from_type        TEXT,
    fwd_from_id          INTEGER,
    fwd_channel_post     INTEGER,
    fwd_from_name        TEXT,
    fwd_date             TEXT,
    fwd_post_author      TEXT,
    fwd_saved_from_type  TEXT,
    fwd_saved_from_id    INTEGER,
    fwd_saved_from_msg_id INTEGER,
    first_seen           TEXT NOT NULL,
    deleted_at           TEXT,
    raw                  TEXT,                  -- what Telegram sent, JSON
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX messages_post ON messages (post_id);
CREATE INDEX messages_grouped ON messages (channel_id, grouped_id) WHERE grouped_id IS NOT NULL;

-- Every earlier version of an edited message.
CREATE TABLE message_versions (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    edit_date   TEXT,                           -- edit_date of the version kept here (NULL: original)
    text        TEXT NOT NULL,
    entities    TEXT NOT NULL DEFAULT '[]',
    replaced_at TEXT NOT NULL,
    FOREIGN KEY (channel_id, message_id) REFERENCES messages (channel_id, message_id)
);
CREATE INDEX message_versions_message ON message_versions (channel_id, message_id);

-- Full-text index over posts. content="posts" lets Datasette find it (`datasette archive.db`).
-- Columns are pre-tokenised by storage/text.py and split by the ascii tokenizer, which keeps our
-- tokens exactly as they are, so SQL search and the in-memory matcher see the same tokens.
CREATE VIRTUAL TABLE posts_fts USING fts5 (
    words, stems, tags,
    content="posts", content_rowid="id", tokenize="ascii"
);
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts (rowid, words, stems, tags) VALUES (new.id, new.words, new.stems, new.tags);
END;
CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
    INSERT INTO posts_fts (posts_fts, rowid, words, stems, tags)
    VALUES ('delete', old.id, old.words, old.stems, old.tags);
END;
CREATE TRIGGER posts_fts_update AFTER UPDATE OF words, stems, tags ON posts BEGIN
    INSERT INTO posts_fts (posts_fts, rowid, words, stems, tags)
    VALUES ('delete', old.id, old.words, old.stems, old.tags);
    INSERT INTO posts_fts (rowid, words, stems, tags) VALUES (new.id, new.words, new.stems, new.tags);
END;

CREATE TABLE subscribers (
    chat_id          INTEGER PRIMARY KEY,
    mode             TEXT NOT NULL DEFAULT 'instant' CHECK (mode IN ('instant', 'digest')),
    digest_schedule  TEXT,                      -- cron; NULL: CHANWATCH_DIGEST_SCHEDULE
    timezone         TEXT NOT NULL DEFAULT 'UTC',
    paused           INTEGER NOT NULL DEFAULT 0,
    paused_reason    TEXT,
    allowed          INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL
);

CREATE TABLE rules (
    id          INTEGER PRIMARY KEY,
    chat_id     INTEGER NOT NULL REFERENCES subscribers (chat_id) ON DELETE CASCADE,
    query       TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    UNIQUE (chat_id, query)
);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    chat_id     INTEGER NOT NULL REFERENCES subscribers (chat_id) ON DELETE CASCADE,
    post_id     INTEGER NOT NULL REFERENCES posts (id),
    rule_ids    TEXT NOT NULL,                  -- JSON list of matched rule ids
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    next_try_at TEXT,
    UNIQUE (chat_id, post_id)
);
CREATE INDEX alerts_unsent ON alerts (chat_id) WHERE sent_at IS NULL;
