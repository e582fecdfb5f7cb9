"""Channel names, in one place: what a user may type for a channel, and a channel's username on a
Telegram `Channel` object. The config, the CLI, /watch, the resolver and the normaliser all use these.
"""

from __future__ import annotations

import re

__all__ = ["parse_channel_name", "parse_post_link", "username_of"]

# Telegram usernames: a letter, then letters, digits or _, 5 to 32 long (collectible ones from 4).
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_LINK = re.compile(
    r"(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?:s/)?(?P<name>[^/?#]+)(?:/\d+)?/?"
    r"(?:[?#].*)?",
    re.IGNORECASE,
)


def parse_channel_name(name: str) -> str:
    """'@name', 'name', 't.me/name', 'https://t.me/s/name/123' -> 'name'.

    Raises ValueError for invite links (t.me/+…, t.me/joinchat/…) and for text that cannot be a
    username, so a typo is reported before any request is sent.
    """
    text = name.strip()
    link = _LINK.fullmatch(text)
    if link:
        text = link.group("name")
        if text.startswith("+") or text.lower() == "joinchat":
            raise ValueError(f"{name!r} is an invite link; only public @usernames can be watched")
    text = text.removeprefix("@")
    if not _NAME.fullmatch(text):
        raise ValueError(f"{name!r} is not a channel username (4-32 letters, digits and _, starting "
                         "with a letter), @username or t.me link")
    return text


_POST = re.compile(
    r"(?:(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?:s/)?|@)?(?P<name>[^/?#\s]+)"
    r"/(?P<id>\d+)/?(?:[?#].*)?", re.IGNORECASE)


def parse_post_link(link: str) -> tuple[str, int]:
    """'https://t.me/name/123', 't.me/s/name/123', '@name/123' -> ('name', 123).

    Raises ValueError for a private channel's t.me/c/ link and for anything that names no post."""
    if re.search(r"(?:t\.me|telegram\.me|telegram\.dog)/c/", link, re.IGNORECASE):
        raise ValueError(f"{link!r} is a private channel's link; only public channels' posts can be fetched")
    match = _POST.fullmatch(link.strip())
    if match is None:
        raise ValueError(f"{link!r} is not a post link; give https://t.me/<channel>/<id> or @channel/<id>")
    return parse_channel_name(match.group("name")), int(match.group("id"))


def username_of(chat: object) -> str | None:
    """A chat's public username: `username`, else the first active one of its collectible `usernames`."""
    username = getattr(chat, "username", None)
    if username:
        return username
    for entry in getattr(chat, "usernames", None) or ():
        if getattr(entry, "active", False) and getattr(entry, "username", None):
            return entry.username
    return None
