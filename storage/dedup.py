"""Canonical keys: how a message finds the one post it carries, whatever order things arrive in.

A post is a set of messages linked to each other, directly or through other messages of it. Every
link is a fact about two messages alone (their headers, texts and dates), never about what the
archive held when one of them arrived, so the posts do not depend on arrival order: a message that
links to several posts merges them (`storage/ingest.py`). A link is a key in `post_keys` that one
message registers for its post ("claims") and the other looks up ("finds"):

1. A forward whose header names a channel and its post id -> `tg:<origin>:<channel_post>`, which
   is also the key of that message in its own channel (`tg:C:<id>`): an original and its forwards.
2. A forward with an origin channel but no post id (Telegram Desktop exports drop the id) ->
   `tgfwd:<origin>:<fingerprint>`. It finds the origin channel's messages with that text, which
   claim `tgtext:<channel>:<fingerprint>` for every version of their text, and they find it.
3. A forward from a user, a chat or a hidden sender -> a key of the sender, the original date and
   the text, shared by every forward of that message.
4. Album parts (same `grouped_id` in one channel) -> `album:<channel>:<grouped_id>`.
5. A copy: two messages with the same words (at least COPY_MIN_WORDS), stated within COPY_WINDOW of
   each other, or LONG_COPY_WINDOW for texts of LONG_COPY_WORDS words or more (a forward states its
   text at its header's original date). A message's mark is its fingerprint and that date: the
   post's own `fingerprint` and `date` for the message that made the post, else a key
   `copy:<fingerprint>:<date>`; it looks up the marks of its fingerprint within the window around
   its date, a range of each index.

Which message of a post is its `original` (the earliest non-forward, with its album) and which are
`copy` sightings is settled from all of them together, in `storage/ingest.py`.

One link still depends on order: `tgtext:` keeps the first post that claims it, so when a channel
posted one text as two posts (too short, or too far apart, to be copies), a forward of it without a
post id joins the first archived, or, arriving first, both originals find it and become one post.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.records import MessageRecord, iso
from storage.text import fold

COPY_MIN_WORDS = 8
COPY_WINDOW = timedelta(days=3)
LONG_COPY_WORDS = 100
LONG_COPY_WINDOW = timedelta(days=30)
"""A long statement re-posted a week later is still the same statement; a short text repeated a week
later is more likely news of its own. Words are counted as `storage.text` tokenises them."""


def message_key(channel_id: int, message_id: int) -> str:
    """The key of a message in its own channel (rule 1)."""
    return f"tg:{channel_id}:{message_id}"


def text_key(channel_id: int, fingerprint: str) -> str:
    """What a channel's own message with this text claims, for forwards without a post id (rule 2)."""
    return f"tgtext:{channel_id}:{fingerprint}"


def forward_text_key(origin_channel_id: int, fingerprint: str) -> str:
    """What a forward of this text from this channel without a post id claims (rule 2)."""
    return f"tgfwd:{origin_channel_id}:{fingerprint}"


def album_key(channel_id: int, grouped_id: int) -> str:
    """What every part of an album claims and finds (rule 4)."""
    return f"album:{channel_id}:{grouped_id}"


def mark_key(fingerprint: str, date: str) -> str:
    """A copy mark: this text stated at this ISO date (rule 5). Marks of one text sort by date."""
    return f"copy:{fingerprint}:{date}"


def copy_window(word_count: int) -> timedelta:
    """How far apart in time two statements of a text of `word_count` words are still one post
    (copies have the same words, so both sides of a link count the same)."""
    return LONG_COPY_WINDOW if word_count >= LONG_COPY_WORDS else COPY_WINDOW


def stated(record: MessageRecord) -> datetime:
    """When the message's text was stated: a forward's original date if its header has one."""
    fwd = record.forward
    return fwd.date if fwd is not None and fwd.date is not None else record.date


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Identity:
    """What a message's header and text say about its post (rules 1-4; copies are looked up apart).

    `key` is the canonical key of a post this message starts; `finds` the keys whose posts it
    belongs to; `claims` the keys it registers for its post. `relation` is 'forward', or 'original'
    for any other message (its post settles whether it is the original or a copy).
    """

    key: str
    relation: str
    own_key: str
    finds: tuple[str, ...]
    claims: tuple[str, ...]


def identify(record: MessageRecord, fingerprint: str | None) -> Identity:
    """The keys of a message, from its header and (where a rule needs it) its text's fingerprint."""
    own = message_key(record.channel_id, record.message_id)
    album: tuple[str, ...] = ()
    if record.grouped_id is not None:
        album = (album_key(record.channel_id, record.grouped_id),)
    fwd = record.forward
    if fwd is None:
        if not fingerprint:
            return Identity(own, "original", own, (own, *album), (own, *album))
        return Identity(
            own, "original", own,
            (own, forward_text_key(record.channel_id, fingerprint), *album),
            (own, text_key(record.channel_id, fingerprint), *album),
        )
    if fwd.from_peer_type == "channel" and fwd.from_peer_id:
        if fwd.channel_post:
            key = message_key(fwd.from_peer_id, fwd.channel_post)
            return Identity(key, "forward", own, (key, *album), (key, own, *album))
        if fingerprint:
            key = forward_text_key(fwd.from_peer_id, fingerprint)
            finds = (text_key(fwd.from_peer_id, fingerprint), key, *album)
            return Identity(key, "forward", own, finds, (key, own, *album))
        return Identity(own, "forward", own, (own, *album), (own, *album))
    # A user, a chat or a hidden sender: no post id exists, so name + date + text identify it.
    who = f"{fwd.from_peer_type}:{fwd.from_peer_id}" if fwd.from_peer_id else fold(fwd.from_name or "")
    if not fingerprint and fwd.date is None:
        return Identity(own, "forward", own, (own, *album), (own, *album))
    key = "fwd:" + _digest(who, iso(fwd.date) or "", fingerprint or "")
    return Identity(key, "forward", own, (key, *album), (key, own, *album))
