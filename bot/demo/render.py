"""What a bot message looks like in a terminal: the text Telegram holds plus its entities, made readable.

The bot sends HTML; Telegram (here the simulator, through Telethon) keeps plain text and entities, so
HTML escapes are already decoded. Bold, italic, underline, strike and code become ANSI styles when
`color` is on (stdout is a terminal) and vanish otherwise; a link shows as ``text <url>``; inline
buttons are listed under the text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from telethon.helpers import add_surrogate, del_surrogate
from telethon.tl import types

from bot.simulator import ChatLogEntry

_STYLES: dict[type, tuple[str, str]] = {
    types.MessageEntityBold: ("\x1b[1m", "\x1b[22m"),
    types.MessageEntityItalic: ("\x1b[3m", "\x1b[23m"),
    types.MessageEntityUnderline: ("\x1b[4m", "\x1b[24m"),
    types.MessageEntityStrike: ("\x1b[9m", "\x1b[29m"),
    types.MessageEntityCode: ("\x1b[36m", "\x1b[39m"),
    types.MessageEntityPre: ("\x1b[36m", "\x1b[39m"),
    types.MessageEntitySpoiler: ("\x1b[2m", "\x1b[22m"),
}
DIM = ("\x1b[2m", "\x1b[22m")


def style(text: str, codes: tuple[str, str], color: bool) -> str:
    """`text` wrapped in an ANSI style when `color` is on."""
    return f"{codes[0]}{text}{codes[1]}" if color and text else text


def to_terminal(text: str, entities: Sequence[Any] | None, *, color: bool = False) -> str:
    """Plain terminal text for a Telegram message: styles as ANSI (if `color`), links as ``text <url>``.

    Entity offsets count UTF-16 code units, so the text is indexed with surrogate pairs, as
    Telethon's own parsers do.
    """
    if not entities:
        return text
    wide = add_surrogate(text)
    inserts: list[tuple[int, int, int, str]] = []  # (position, 0 close / 1 open, tie-break, text)
    for index, entity in enumerate(entities):
        start = max(0, min(entity.offset, len(wide)))
        end = max(start, min(entity.offset + entity.length, len(wide)))
        opening, closing = "", ""
        codes = _STYLES.get(type(entity))
        if codes is not None and color:
            opening, closing = codes
        if isinstance(entity, types.MessageEntityTextUrl):
            label = del_surrogate(wide[start:end]).strip()
            if entity.url and entity.url != label:
                closing += f" <{entity.url}>"
        elif isinstance(entity, types.MessageEntityMentionName) and color:
            opening, closing = "\x1b[4m", "\x1b[24m"
        if opening:
            inserts.append((start, 1, index, opening))
        if closing:
            inserts.append((end, 0, -index, closing))
    inserts.sort(key=lambda item: (item[0], item[1], item[2]))
    out: list[str] = []
    position = 0
    for at, _, _, piece in inserts:
        out.append(wide[position:at])
        out.append(piece)
        position = at
    out.append(wide[position:])
    return del_surrogate("".join(out))


def buttons_line(entry: ChatLogEntry) -> str | None:
    """Inline buttons under a message as ``[ label ]`` (with ``<url>`` for link buttons), or None."""
    labels = []
    for row in entry.buttons:
        for button in row:
            label = f"[ {getattr(button, 'text', '?')} ]"
            # KeyboardButtonUrl.url (older layers) or KeyboardInlineButton.type.url (newer ones)
            url = getattr(button, "url", None) or getattr(getattr(button, "type", None), "url", None)
            labels.append(f"{label} <{url}>" if url else label)
    return "  ".join(labels) or None


def render_message(entry: ChatLogEntry, *, sender: str, recipient: str, when: datetime,
                   color: bool = False, width: int = 78) -> str:
    """A bot message as a framed block: a header line (time, sender → recipient), the text, buttons."""
    head = f"── {when:%H:%M}  {sender} → {recipient} "
    lines = [style(head + "─" * max(0, width - len(head)), DIM, color)]
    body = to_terminal(entry.text, entry.entities, color=color)
    for line in body.splitlines() or [""]:
        wrapped = textwrap.wrap(line, width=width - 2, break_long_words=False, break_on_hyphens=False)
        lines += [f"│ {part}".rstrip() for part in wrapped or [""]]
    buttons = buttons_line(entry)
    if buttons:
        lines.append(f"│ {buttons}")
    return "\n".join(lines)
