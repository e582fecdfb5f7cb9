"""Reactions as counts per reaction: from Telegram's MessageReactions (real Bloomberg messages and
hand-built ones) and from Telegram Desktop exports (real exports and hand-written entries)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest
from telethon.tl import types

from bot.normalize import normalize
from storage.database import connect_sync
from storage.exchange import import_file
from storage.exchange.check import Malformed
from storage.exchange.desktop import desktop_reactions
from tests.bot.tl_from_dict import tl_from_dict
from tests.real_fixtures import real

BLOOMBERG = real("telethon_dicts") / "bloomberg_1488156064.txt"
TRANTOR = real("desktop_export") / "trantor_library_TG101_result.json"
WHEN = datetime(2025, 12, 17, 10, 0, tzinfo=UTC)


def bloomberg(message_id: int) -> dict:
    for line in BLOOMBERG.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        if data["id"] == message_id:
            return data
    raise KeyError(message_id)


def test_real_bloomberg_reactions_become_counts_per_emoji():
    record = normalize(tl_from_dict(bloomberg(3148)))
    assert record.reactions == {"😁": 44, "🤩": 6, "❤": 5, "🔥": 4, "🤔": 4, "😱": 2}


def test_custom_and_paid_reactions_are_named_by_document_id_and_paid():
    reactions = types.MessageReactions(results=[
        types.ReactionCount(reaction=types.ReactionEmoji("👍"), count=3),
        types.ReactionCount(reaction=types.ReactionCustomEmoji(5368324170671202286), count=2),
        types.ReactionCount(reaction=types.ReactionPaid(), count=7),
    ])
    message = types.Message(id=1, peer_id=types.PeerChannel(7), date=WHEN, message="x", reactions=reactions)
    assert normalize(message).reactions == {"👍": 3, "custom:5368324170671202286": 2, "paid": 7}


def test_a_message_without_a_reactions_field_has_unknown_reactions_not_none():
    message = types.Message(id=1, peer_id=types.PeerChannel(7), date=WHEN, message="x")
    assert normalize(message).reactions is None
    empty = types.Message(id=1, peer_id=types.PeerChannel(7), date=WHEN, message="x",
                          reactions=types.MessageReactions(results=[]))
    assert normalize(empty).reactions == {}


def test_desktop_reaction_entries_of_each_type():
    entries = [
        {"type": "emoji", "count": 3, "emoji": "👍"},
        {"type": "custom_emoji", "count": 2, "document_id": "5368324170671202286"},
        {"type": "paid", "count": 7},
        {"type": "something_new", "count": 1},
    ]
    assert desktop_reactions(entries) == {"👍": 3, "custom:5368324170671202286": 2, "paid": 7}
    assert desktop_reactions(None) is None


def test_a_desktop_reaction_without_a_count_names_the_field():
    with pytest.raises(Malformed, match=r"reactions\[0\]\.count"):
        desktop_reactions([{"type": "emoji", "emoji": "👍"}])


def test_real_desktop_export_stores_its_reactions():
    conn: sqlite3.Connection = connect_sync(":memory:")
    import_file(conn, TRANTOR)
    exported = json.loads(TRANTOR.read_text(encoding="utf-8"))["messages"]
    with_reactions = [m for m in exported if m.get("reactions")]
    assert len(with_reactions) > 100
    for m in with_reactions[:50]:
        stored = conn.execute("SELECT reactions FROM messages WHERE message_id = ?", (m["id"],)).fetchone()
        expected = {r["emoji"]: r["count"] for r in m["reactions"]}
        assert json.loads(stored[0]) == expected
