"""Canonical keys: how a message finds the one post it carries, whatever order things arrive in.

1. A forward whose header names a channel and its post id -> `tg:<origin>:<channel_post>`.
2. A message posted in channel C -> `tg:C:<id>`, so an original and its forwards share a key.
3. A forward with no channel post id (hidden user, a signature only, or a Telegram Desktop export,
   which drops the id) -> a key made of the origin and the folded text (and, where the header has
   one, the original date); originals also register that text key so such forwards find them.
4. A non-forwarded message whose words equal a recent post's (long enough to be distinctive) is a
   `copy` of it: `find_copy` in `storage/ingest.py`.
5. Album parts (same `grouped_id` in one channel) join the post of the first part seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from storage.records import MessageRecord, iso
from storage.text import fold

COPY_MIN_WORDS = 8
COPY_WINDOW = timedelta(days=3)


def message_key(channel_id: int, message_id: int) -> str:
    """The key of a message in its own channel (rule 2)."""
    return f"tg:{channel_id}:{message_id}"


def text_key(origin_channel_id: int, fingerprint: str) -> str:
    """The key by which a forward without a post id finds its channel's post (rule 3)."""
    return f"tgtext:{origin_channel_id}:{fingerprint}"


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Identity:
    """Where a message points: the canonical key to look up and how it relates to its post."""

    key: str
    relation: str  # 'original' or 'forward' ('copy' is decided against the archive)
    own_key: str


def identify(record: MessageRecord, fingerprint: str | None) -> Identity:
    """The canonical key of a message, from its header alone (rules 1-3)."""
    own = message_key(record.channel_id, record.message_id)
    fwd = record.forward
    if fwd is None:
        return Identity(own, "original", own)
    if fwd.from_peer_type == "channel" and fwd.from_peer_id:
        if fwd.channel_post:
            return Identity(message_key(fwd.from_peer_id, fwd.channel_post), "forward", own)
        if fingerprint:
            return Identity(text_key(fwd.from_peer_id, fingerprint), "forward", own)
        return Identity(own, "forward", own)
    # A user, a chat or a hidden sender: no post id exists, so name + date + text identify it.
    who = f"{fwd.from_peer_type}:{fwd.from_peer_id}" if fwd.from_peer_id else fold(fwd.from_name or "")
    if not fingerprint and fwd.date is None:
        return Identity(own, "forward", own)
    return Identity("fwd:" + _digest(who, iso(fwd.date) or "", fingerprint or ""), "forward", own)
