"""Reading a channel's history, page by page, newest first: the one pager the poll and the backfill share.

Each page is a raw messages.GetHistory (never Telethon's `iter_messages(reverse=True)`, which loses
messages in 1.36) sent under the flood policy, with the stored id + access_hash. A page holds the
messages between `above` and `below` (both exclusive), newest first, and the chats the answer
carried, so forwards can be normalised with their origin's username and title (`records_of`).

The consumer decides what to do with each page and when to stop; leaving the loop early cancels
a prefetched page. With `prefetch`, the next page is requested while the consumer commits this
one (the backfill overlaps its network and its writes this way).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from telethon.tl import functions, types

from bot.names import username_of
from bot.normalize import is_content, normalize
from bot.telegram import Requests, RequestStats, input_peer
from storage.records import Channel, ChannelState, MessageRecord

__all__ = ["PAGE_SIZE", "HistoryPage", "history", "records_of", "refreshed"]

PAGE_SIZE = 100  # Telegram's maximum for messages.getHistory / channels.getMessages / getPeerDialogs


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One answer of messages.GetHistory, cut to the window asked for.

    `messages` are newest first, all with ids between `above` and `below`; `last` is True when no
    older message remains in the window (a short page, or the page reached `above`).
    """

    messages: tuple[Any, ...]
    chats: tuple[Any, ...]
    last: bool

    @property
    def newest(self) -> int:
        """The highest message id of the page (0 when empty)."""
        return self.messages[0].id if self.messages else 0

    @property
    def oldest(self) -> int:
        """The lowest message id of the page (0 when empty)."""
        return self.messages[-1].id if self.messages else 0


async def history(
    requests: Requests,
    channel: ChannelState,
    *,
    below: int = 0,
    above: int = 0,
    page_size: int = PAGE_SIZE,
    stats: RequestStats | None = None,
    via: Callable[[Any], Awaitable[Any]] | None = None,
    prefetch: bool | Callable[[HistoryPage], bool] = False,
) -> AsyncIterator[HistoryPage]:
    """Pages of `channel`'s messages with `above` < id < `below` (0: no bound), newest first.

    Each page costs one request (counted in `stats`, sent through `via` — a takeout client — when
    given). Stops after the page marked `last`; a page with no messages in the window is last too.
    `prefetch` (True, or a test on the page about to be yielded) asks for the next page before the
    consumer has handled this one. Use it under `contextlib.aclosing`, so that stopping early
    cancels the prefetched page at once.
    """
    stats = stats if stats is not None else RequestStats()

    def fetch(offset_id: int) -> asyncio.Future[Any]:
        return asyncio.ensure_future(requests("get_history", functions.messages.GetHistoryRequest(
            peer=input_peer(channel), offset_id=offset_id, offset_date=None, add_offset=0,
            limit=page_size, max_id=0, min_id=above, hash=0,
        ), stats=stats, via=via))

    pending: asyncio.Future[Any] | None = fetch(below)
    try:
        while pending is not None:
            answer = await pending
            pending = None
            stats.pages += 1
            messages = sorted((m for m in answer.messages
                               if getattr(m, "id", 0) > above and (not below or m.id < below)),
                              key=lambda m: m.id, reverse=True)
            last = (not messages or len(answer.messages) < page_size or messages[-1].id <= above + 1)
            page = HistoryPage(tuple(messages), tuple(answer.chats), last)
            if not last:
                below = page.oldest
                if prefetch is True or (callable(prefetch) and prefetch(page)):
                    pending = fetch(below)
            yield page
            if last:
                return
            if pending is None:
                pending = fetch(below)
    finally:
        if pending is not None and not pending.done():  # the consumer stopped early
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def records_of(messages: Iterable[Any], chats: Sequence[Any], channel_id: int) -> list[MessageRecord]:
    """Content messages of `channel_id` in an answer, normalised with the answer's chats."""
    by_id: Mapping[int, Any] = {c.id: c for c in chats}
    out = []
    for message in messages:
        if not is_content(message):
            continue
        peer = message.peer_id
        if isinstance(peer, types.PeerChannel) and peer.channel_id == channel_id:
            out.append(normalize(message, chats=by_id))
    return out


def refreshed(channel: Channel, chats: Sequence[Any]) -> Channel:
    """`channel` with the username/title the answer carries for it (renames are followed)."""
    for chat in chats:
        if getattr(chat, "id", None) == channel.id and isinstance(chat, types.Channel):
            return replace(channel, username=username_of(chat) or channel.username,
                           title=chat.title or channel.title)
    return channel
