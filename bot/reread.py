"""Re-reading stored messages by id (channels.GetMessages, 100 a request): what the re-check of the
recent window and the slow sweep over older messages share.

A message that comes back with a newer edit_date than the stored one is a record for ingest (a new
version); one that comes back otherwise is present (its `last_seen` moves); a missing id is a
deletion. Results are matched by id, never by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from telethon.tl import functions, types

from bot.history import PAGE_SIZE, records_of, refreshed
from bot.normalize import is_content
from bot.telegram import Requests, RequestStats, input_channel
from storage.records import Batch, Channel, ChannelState, MessageRecord, iso

__all__ = ["Reread", "reread"]


@dataclass(slots=True)
class Reread:
    """What re-reading some stored ids found: edited records, ids missing, ids present unchanged."""

    channel: Channel
    edited: list[MessageRecord] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    present: list[int] = field(default_factory=list)

    def batch(self, seen_at: datetime, via: str) -> Batch:
        """The one batch that records it all as seen at `seen_at` (deletions seen by `via`)."""
        return Batch(self.channel, tuple(self.edited), deleted_ids=tuple(self.deleted), seen_at=seen_at,
                     present_ids=tuple(self.present), deleted_via=via)


async def reread(requests: Requests, state: ChannelState, stored: dict[int, str | None],
                 stats: RequestStats, *, kind: str = "get_messages") -> Reread:
    """Re-read `stored` ({message_id: stored edit_date}) of one channel, newest first, 100 a request."""
    ids = sorted(stored, reverse=True)
    found_all = Reread(state.channel())
    for start in range(0, len(ids), PAGE_SIZE):
        chunk = ids[start:start + PAGE_SIZE]
        answer = await requests(kind, functions.channels.GetMessagesRequest(
            input_channel(state), [types.InputMessageID(i) for i in chunk]), stats=stats)
        found_all.channel = refreshed(found_all.channel, answer.chats)
        found = {
            m.id: m for m in answer.messages
            if not isinstance(m, types.MessageEmpty)
            and isinstance(getattr(m, "peer_id", None), types.PeerChannel)
            and m.peer_id.channel_id == state.id
        }
        changed = []
        for message_id in chunk:
            message = found.get(message_id)
            if message is None:
                found_all.deleted.append(message_id)
            elif is_content(message) and message.edit_date is not None and (
                (iso(message.edit_date) or "") > (stored[message_id] or "")
            ):
                changed.append(message)
            else:
                found_all.present.append(message_id)
        found_all.edited += records_of(changed, answer.chats, state.id)
    return found_all
