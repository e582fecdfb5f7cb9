"""The chats the bot has heard from, and how to address each: kept in the archive so that whichever
process is the dispatcher (several readers, one archive: docs/architecture.md) can reach a chat that
wrote to another process's bot session."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from storage.records import iso

__all__ = ["Peer", "peer_of", "remember_peer"]


@dataclass(frozen=True)
class Peer:
    """How the bot addresses a chat: 'user', 'chat' (a basic group) or 'channel' (also supergroups),
    the peer's own id, and the access hash Telegram gave the bot for it (None for a basic group)."""

    kind: str
    peer_id: int
    access_hash: int | None


def remember_peer(conn: sqlite3.Connection, chat_id: int, peer: Peer, now: datetime) -> None:
    """Record (or refresh) how to address `chat_id`."""
    conn.execute(
        """INSERT INTO bot_peers (chat_id, kind, peer_id, access_hash, seen_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (chat_id) DO UPDATE SET kind = excluded.kind, peer_id = excluded.peer_id,
               access_hash = excluded.access_hash, seen_at = excluded.seen_at""",
        (chat_id, peer.kind, peer.peer_id, peer.access_hash, iso(now)))


def peer_of(conn: sqlite3.Connection, chat_id: int) -> Peer | None:
    """How to address `chat_id`, if the bot ever heard from it."""
    row = conn.execute("SELECT kind, peer_id, access_hash FROM bot_peers WHERE chat_id = ?",
                       (chat_id,)).fetchone()
    return Peer(row[0], row[1], row[2]) if row else None
