"""The slow deletion sweep's place in each channel (`channels.sweep_before`, `sweep_started`) and the
stored ids it re-checks next: live messages below the re-check window, going down from its floor.

A round starts at the window's floor (`sweep_before` NULL), takes the next `limit` live ids below
`sweep_before`, and when nothing is left below, starts again at the top (a new `sweep_started`). The
position moves in the same transaction as the ingest of what the sweep found (`bot.sweep`), so a
crash repeats at most one request.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from storage.channels import recent_window

__all__ = ["SweepChunk", "move", "next_chunk"]


@dataclass(frozen=True, slots=True)
class SweepChunk:
    """The ids to re-check next ({message_id: stored edit_date}), the position after them, and
    whether they begin a new round."""

    stored: dict[int, str | None]
    before: int
    new_round: bool


def next_chunk(conn: sqlite3.Connection, channel_id: int, window_ids: int, since: str,
               limit: int = 100) -> SweepChunk | None:
    """The next `limit` live ids of the channel below the re-check window and below its
    `sweep_before` (from the window's floor again once the bottom was reached); None: nothing older
    than the window is stored.

    >>> next_chunk(conn, 1001, 200, "2025-11-28T00:00:00+00:00")  # doctest: +SKIP
    SweepChunk(stored={800: None, ...}, before=701, new_round=False)
    """
    window = recent_window(conn, channel_id, window_ids, since)
    if not window:
        return None
    floor = min(window)
    row = conn.execute("SELECT sweep_before FROM channels WHERE id = ?", (channel_id,)).fetchone()
    position = row[0] if row is not None else None

    def below(top: int) -> dict[int, str | None]:
        return dict(conn.execute(
            """SELECT message_id, edit_date FROM messages WHERE channel_id = ? AND deleted_at IS NULL
               AND message_id < ? ORDER BY message_id DESC LIMIT ?""",
            (channel_id, top, limit),
        ).fetchall())

    if position is not None and (stored := below(min(position, floor))):
        return SweepChunk(stored, min(stored), new_round=False)
    if stored := below(floor):  # a new round, from the top
        return SweepChunk(stored, min(stored), new_round=True)
    return None


def move(conn: sqlite3.Connection, channel_id: int, chunk: SweepChunk, now: str) -> None:
    """Record that the sweep re-checked `chunk`: the next ids are below it; a new round is dated."""
    if chunk.new_round:
        conn.execute("UPDATE channels SET sweep_before = ?, sweep_started = ? WHERE id = ?",
                     (chunk.before, now, channel_id))
    else:
        conn.execute("UPDATE channels SET sweep_before = ? WHERE id = ?", (chunk.before, channel_id))
