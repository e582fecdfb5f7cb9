-- Schema version 15: several readers sharing one archive (issue #17). Portable SQL: the same step on
-- SQLite and PostgreSQL.
-- A reader is one `chanwatch run` process with its Telegram account (or none: the web preview).
CREATE TABLE readers (
    name        TEXT PRIMARY KEY,        -- CHANWATCH_READER, else host:pid
    account_id  BIGINT,                  -- the reading account's user id; NULL reads by web only
    started_at  TEXT NOT NULL,
    seen_at     TEXT NOT NULL            -- its last claim or renewal: alive while within one period
);
-- Which reader polls which watched channel: one row per channel, `reader` NULL when free. A lease
-- lapses at `expires_at` unless renewed; another reader may claim it then.
CREATE TABLE leases (
    channel_id  BIGINT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    reader      TEXT,
    claimed_at  TEXT,
    expires_at  TEXT
);
CREATE INDEX leases_reader ON leases (reader);
-- The channels each account has resolved or joined, with the access hash Telegram gave that account
-- (an access hash is valid for one account only: channels.access_hash is the first reader's). A
-- channel without a public username (a private one an account joined) is leased only to readers with
-- an account listed here; public channels are readable by any account, web channels by any reader.
CREATE TABLE account_channels (
    account_id  BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    access_hash BIGINT,
    PRIMARY KEY (account_id, channel_id)
);
-- Work exactly one process does (the bot and the alert dispatcher: 'dispatcher'), by lease.
CREATE TABLE roles (
    role        TEXT PRIMARY KEY,
    reader      TEXT NOT NULL,
    taken_at    TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
