"""Engagement in the simulated Telegram: views and reactions that change as World time passes, and
the batched requests that read them (`messages.GetMessagesViews`, `messages.GetMessagesReactions`).

Counts live on the channel's stored `Message` (`views`, `forwards`, `replies`, `reactions`), so every
read — history, GetMessages, these two — shows the same numbers. They change explicitly
(`World.set_views`, `World.set_reactions`) or by a growth curve (`World.grow_engagement`): a post's
views approach a ceiling as it ages (half of it after `half_life`), reactions follow the views; views
only ever grow.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from .tl import make

if TYPE_CHECKING:
    from .world import SimChannel, SimUser, World

__all__ = ["Growth", "get_reactions", "get_views", "grow", "reactions_tl", "set_reactions"]


def reactions_tl(counts: dict[str, int]) -> types.MessageReactions:
    """Counts per reaction ("👍", "custom:<document id>", "paid") as Telegram's MessageReactions."""
    results = []
    for key, count in counts.items():
        if key == "paid":
            reaction: Any = types.ReactionPaid()
        elif key.startswith("custom:"):
            reaction = types.ReactionCustomEmoji(int(key.removeprefix("custom:")))
        else:
            reaction = types.ReactionEmoji(key)
        results.append(make(types.ReactionCount, reaction=reaction, count=count))
    return make(types.MessageReactions, results=results, recent_reactions=[], top_reactors=[])


def set_reactions(channel: SimChannel, msg_id: int, counts: dict[str, int]) -> None:
    """Set a channel post's reaction counts (no update is pushed, as for views)."""
    channel.messages[msg_id].reactions = reactions_tl(counts)


@dataclass(frozen=True, slots=True)
class Growth:
    """How a channel's posts gather views: `ceiling` views in the end, half of them after
    `half_life`; one reaction of `emoji` per `views_per_reaction` views; one forward per
    `views_per_forward`."""

    ceiling: int = 10_000
    half_life: dt.timedelta = dt.timedelta(hours=6)
    emoji: str = "👍"
    views_per_reaction: int = 100
    views_per_forward: int = 500

    def views_at(self, age: dt.timedelta) -> int:
        """Views of a post `age` old."""
        seconds = max(age.total_seconds(), 0.0)
        return int(self.ceiling * (1 - math.pow(2, -seconds / self.half_life.total_seconds())))


def grow(world: World, channel: SimChannel, growth: Growth) -> None:
    """Bring every post of `channel` to the counts its age at `world.now` gives (never fewer views)."""
    for msg in channel.messages.values():
        if not isinstance(msg, types.Message):
            continue
        views = max(msg.views or 0, growth.views_at(world.now - msg.date))
        msg.views = views
        msg.forwards = max(msg.forwards or 0, views // growth.views_per_forward)
        reacted = views // growth.views_per_reaction
        if reacted:
            msg.reactions = reactions_tl({growth.emoji: reacted})


def get_views(world: World, channel: SimChannel, me: SimUser, ids: list[int], increment: bool) -> Any:
    """messages.GetMessagesViews: one MessageViews per id, in order (empty for a missing id);
    `increment` counts the reader's view once per post, as Telegram does."""
    seen = world.viewed.setdefault(me.id, set())
    views = []
    for msg_id in ids:
        msg = channel.messages.get(msg_id)
        if not isinstance(msg, types.Message):
            views.append(make(types.MessageViews))
            continue
        if increment and msg.views is not None and (channel.id, msg_id) not in seen:
            seen.add((channel.id, msg_id))
            msg.views += 1
        views.append(make(types.MessageViews, views=msg.views, forwards=msg.forwards, replies=msg.replies))
    users, chats = world.entities_for([], me, extra=[channel.peer])
    return make(types.messages.MessageViews, views=views, chats=chats, users=users)


def get_reactions(world: World, channel: SimChannel, me: SimUser, ids: list[int]) -> Any:
    """messages.GetMessagesReactions: Updates with one UpdateMessageReactions per existing id."""
    updates = [
        make(types.UpdateMessageReactions, peer=channel.peer, msg_id=msg_id,
             reactions=msg.reactions or reactions_tl({}))
        for msg_id in ids if isinstance(msg := channel.messages.get(msg_id), types.Message)
    ]
    users, chats = world.entities_for([], me, extra=[channel.peer])
    return types.Updates(updates=updates, users=users, chats=chats, date=world.now, seq=0)
