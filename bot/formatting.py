"""How posts, alerts and search results look in Telegram: HTML parse mode, never over 4096 characters.

Everything from the archive is escaped before it is wrapped in tags, so a post containing `<b>`, `&`
or `*` shows as that text. Messages are built from self-contained blocks and split between blocks;
a block too long on its own is cut at a word boundary, before escaping, so no tag or entity is
ever cut in half.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from storage.records import Post, Sighting

LIMIT = 4096
SNIPPET_CHARS = 600
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Escape text for Telegram's HTML parse mode (quotes too, so it is safe inside attributes)."""
    return html.escape(text, quote=True)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 0)]
    space = head.rfind(" ")
    if space > limit * 0.6:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def window(text: str, spans: Sequence[tuple[int, int]], size: int = SNIPPET_CHARS) -> tuple[int, int]:
    """The [start, end) slice of `text` of about `size` characters around the first span."""
    if len(text) <= size:
        return 0, len(text)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - size // 3, len(text) - size))
    if start:
        space = text.find(" ", start, start + 40)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", end - 40, end)
        end = space if space > start else end
    return start, end


def highlight(text: str, spans: Sequence[tuple[int, int]], start: int = 0, end: int | None = None) -> str:
    """Escaped `text[start:end]` with the spans inside it in bold."""
    end = len(text) if end is None else end
    out: list[str] = []
    pos = start
    for s, e in sorted(spans):
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        out.append(escape(text[pos:s]))
        out.append(f"<b>{escape(text[s:e])}</b>")
        pos = e
    out.append(escape(text[pos:end]))
    return "".join(out)


def snippet(text: str, spans: Sequence[tuple[int, int]], size: int = SNIPPET_CHARS) -> str:
    """A highlighted, escaped excerpt around the first match, with ellipses where it was cut."""
    start, end = window(text, spans, size)
    body = highlight(text, spans, start, end)
    return (ELLIPSIS if start else "") + body + (ELLIPSIS if end < len(text) else "")


def link(url: str, label: str) -> str:
    """An HTML link with escaped label and URL."""
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def channel_label(username: str | None, title: str | None, channel_id: int | None = None) -> str:
    """`@username`, else the title, else the id."""
    if username:
        return f"@{username}"
    return title or (str(channel_id) if channel_id else "unknown")


def origin_line(post: Post) -> str:
    """Who posted it first and when, linked to the original where Telegram has a link."""
    name = post.origin_title or channel_label(post.origin_username, None, post.origin_channel_id)
    who = escape(name)
    if post.origin_username:
        who += f" (@{escape(post.origin_username)})"
    url = post.origin_url
    when = post.date.replace("T", " ")[:16] + " UTC"
    label = link(url, when) if url else escape(when)
    return f"📢 <b>{who}</b> · {label}"


def carried_by(post: Post, shown: int = 1) -> str | None:
    """`forwarded by rusembc, +2 more`, from the sightings that are not the original."""
    others = [s for s in post.sightings if s.relation != "original"]
    if not others:
        return None
    names = list(dict.fromkeys(channel_label(s.username, s.title, s.channel_id) for s in others))
    verb = "forwarded by" if any(s.relation == "forward" for s in others) else "copied by"
    text = verb + " " + ", ".join(escape(n.removeprefix("@")) for n in names[:shown])
    if len(names) > shown:
        text += f", +{len(names) - shown} more"
    return text


def sighting_links(sightings: Sequence[Sighting], limit: int = 8) -> str:
    """Links to each sighting (`rusembc/500`), the first `limit` of them."""
    parts = [
        link(s.url, f"{channel_label(s.username, s.title, s.channel_id).removeprefix('@')}/{s.message_id}")
        + (" (deleted)" if s.deleted_at else "")
        for s in sightings[:limit]
    ]
    if len(sightings) > limit:
        parts.append(f"+{len(sightings) - limit} more")
    return " · ".join(parts)


def render_post(post: Post, spans: Sequence[tuple[int, int]] = (), size: int = SNIPPET_CHARS) -> str:
    """One post as a self-contained HTML block: origin, carried by, snippet, links."""
    lines = [origin_line(post)]
    carried = carried_by(post)
    if carried:
        lines.append(f"↪️ {carried}")
    if post.text:
        lines.append(snippet(post.text, spans, size))
    else:
        lines.append(f"<i>[{escape(post.media_kind or 'no text')}]</i>")
    if post.sightings:
        lines.append(sighting_links(post.sightings))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Rendered:
    """Messages ready to send, each within Telegram's limit."""

    messages: tuple[str, ...]


def pack(blocks: Sequence[str], limit: int = LIMIT, separator: str = "\n\n") -> Rendered:
    """Join blocks into as few messages as fit under `limit`; an oversized block gets its own message.

    Blocks are whole HTML fragments, so a split never falls inside a tag. A block longer than the
    limit on its own is a caller error (render with a smaller snippet); it is cut as plain text.
    """
    messages: list[str] = []
    current = ""
    for block in blocks:
        if utf16_len(block) > limit:
            block = escape(cut(html.unescape(_strip_tags(block)), limit // 2))
        candidate = block if not current else current + separator + block
        if utf16_len(candidate) <= limit:
            current = candidate
        else:
            messages.append(current)
            current = block
    if current:
        messages.append(current)
    return Rendered(tuple(messages))


def _strip_tags(fragment: str) -> str:
    out: list[str] = []
    inside = False
    for ch in fragment:
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)
