-- Schema version 18: the chats the bot has heard from, with the access hash Telegram gave the bot for
-- each (issue #17). A bot's session keeps them too, but only on the machine that heard them: after a
-- takeover, another machine's dispatcher reaches the chats through these. Portable SQL.
CREATE TABLE bot_peers (
    chat_id     BIGINT PRIMARY KEY,       -- as the bot sees it: a user's id, -group, -100channel
    kind        TEXT NOT NULL CHECK (kind IN ('user', 'chat', 'channel')),
    peer_id     BIGINT NOT NULL,          -- the user's, group's or channel's own id
    access_hash BIGINT,                   -- NULL for a basic group, which needs none
    seen_at     TEXT NOT NULL
);
