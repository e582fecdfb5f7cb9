"""What Telegram shows as a message's text when part of it is outside `message`: a poll's question and
answers, a to-do list, an invoice's or game's title and description, a venue, a contact's name, a
giveaway's prize. Newer layers carry such text (often as TextWithEntities) in the media, so a post
made of it alone would be archived empty and unsearchable.

`shown_text` joins the caption and those parts into the record's searchable `text`, caption first,
each part on its own line(s) after a blank line, with every part's entities moved to where its text
lands (UTF-16 offsets, as Telegram counts). `raw` keeps what Telegram sent untouched. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from storage.text import utf16_len

__all__ = ["Part", "shown_text"]

Part = tuple[str, Sequence[dict[str, Any]]]
"""A piece of text the media shows, with its entities (offsets within the piece)."""


def shown_text(caption: str, entities: Sequence[dict[str, Any]], parts: Iterable[Part]
               ) -> tuple[str, tuple[dict[str, Any], ...]]:
    """The caption followed by the media's text parts (empty ones dropped): one line per part, a blank
    line between the caption and them; entities shifted to their place.

    >>> shown_text("", (), [("Go?", ()), ("yes", ()), ("no", ())])
    ('Go?\\nyes\\nno', ())
    """
    pieces = [(text, tuple(ents)) for text, ents in parts if text]
    if not pieces:
        return caption, tuple(entities)
    out = caption
    moved = list(entities)
    for index, (text, ents) in enumerate(pieces):
        if out:
            out += "\n\n" if index == 0 else "\n"
        offset = utf16_len(out)
        moved += [{**e, "offset": e.get("offset", 0) + offset} for e in ents]
        out += text
    return out, tuple(moved)
