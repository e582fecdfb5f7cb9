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

from storage.records import Post, PostFile, Sighting, channel_label
from storage.text import excerpt_window, utf16_len

LIMIT = 4096
CAPTION_LIMIT = 1024  # a photo's caption
SNIPPET_CHARS = 600
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Escape text for Telegram's HTML parse mode (quotes too, so it is safe inside attributes)."""
    return html.escape(text, quote=True)


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 0)]
    space = head.rfind(" ")
    if space > limit * 0.6:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


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
    start, end = excerpt_window(text, spans, size)
    body = highlight(text, spans, start, end)
    return (ELLIPSIS if start else "") + body + (ELLIPSIS if end < len(text) else "")


def link(url: str, label: str) -> str:
    """An HTML link with escaped label and URL."""
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def minute(stamp: str) -> str:
    """An ISO-8601 UTC stamp to the minute, for people: '2025-12-17 10:00'."""
    return stamp[:16].replace("T", " ")


def duration(seconds: int | None) -> str:
    """A delay for people (reports, charts): '45s', '12m', '3h 20m', '1d 1h'."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours}h {rest // 60}m" if rest >= 60 else f"{hours}h"
    days, rest = divmod(seconds, 86400)
    return f"{days}d {rest // 3600}h" if rest >= 3600 else f"{days}d"


def origin_line(post: Post) -> str:
    """Who posted it first and when, linked to the original where Telegram has a link."""
    name = post.origin_title or channel_label(post.origin_username, None, post.origin_channel_id)
    who = escape(name)
    if post.origin_username:
        who += f" (@{escape(post.origin_username)})"
    url = post.origin_url
    when = minute(post.date) + " UTC"
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
        + (f" ({escape(s.deletion)})" if s.deletion else "")
        for s in sightings[:limit]
    ]
    if len(sightings) > limit:
        parts.append(f"+{len(sightings) - limit} more")
    return " · ".join(parts)


# -- media badges ----------------------------------------------------------------------------------

MB = 1024 * 1024  # as CHANWATCH_MEDIA_MAX_MB counts
_ICONS = {"photo": "🖼", "video": "🎞", "gif": "🎞", "audio": "🎵", "voice": "🎤", "sticker": "🏷",
          "document": "📄"}
_NO_BADGE = {"webpage", "poll", "geo", "contact", "other"}  # no file of the post's own to speak of
_DOC_LABELS = {"application/pdf": "PDF", "application/zip": "ZIP", "text/plain": "text"}


def human_size(size: int) -> str:
    """Bytes for people: '930 B', '12 KB', '2.1 MB', '48 MB', '1.2 GB' (binary units, one decimal
    below 10)."""
    value, unit = float(size), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    if unit == "B":
        return f"{size} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def _file_label(kind: str, mime_type: str | None, file_name: str | None) -> str:
    if kind != "document":
        return kind
    if mime_type in _DOC_LABELS:
        return _DOC_LABELS[mime_type]
    ext = (file_name or "").rpartition(".")[2] if "." in (file_name or "") else ""
    return ext.upper()[:8] if ext.isalnum() else "file"


def media_badge(post: Post, files: Sequence[PostFile] = ()) -> str | None:
    """What the post carries besides text, escaped: '📄 PDF · 2.1 MB', '🖼 photo', '📎 3 files · 9.0 MB',
    from its files in the download queue, else from the kind the archive recorded (`media_kind`);
    None for a post without media or with only a link preview, a poll or a place."""
    if post.media_kind in _NO_BADGE:
        return None
    if len(files) > 1:
        sizes = [f.size for f in files]
        total = f" · {human_size(sum(s for s in sizes if s))}" if all(sizes) else ""
        return f"📎 {len(files)} files{total}"
    if files:
        file = files[0]
        kind, label, size = file.kind, _file_label(file.kind, file.mime_type, file.file_name), file.size
    elif post.media_kind:
        kind, label, size = post.media_kind, post.media_kind, None
    else:
        return None
    icon = _ICONS.get(kind, "📎")
    shown = f"{icon} {escape(label)}"
    if size and kind != "photo":  # a photo's size says little; a document's or video's does
        shown += f" · {human_size(size)}"
    return shown


def render_post(post: Post, spans: Sequence[tuple[int, int]] = (), size: int = SNIPPET_CHARS,
                links: int = 8, files: Sequence[PostFile] = ()) -> str:
    """One post as a self-contained HTML block: origin, carried by, what media it carries (`files`,
    from `storage.media_queue.files_of_post`), snippet, up to `links` sighting links."""
    lines = [origin_line(post)]
    carried = carried_by(post)
    if carried:
        lines.append(f"↪️ {carried}")
    badge = media_badge(post, files)
    if badge:
        lines.append(badge)
    if post.text:
        lines.append(snippet(post.text, spans, size))
    elif not badge:
        lines.append(f"<i>[{escape(post.media_kind or 'no text')}]</i>")
    if post.sightings and links:
        lines.append(sighting_links(post.sightings, links))
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


# -- alerts and digests ---------------------------------------------------------------------------

RULES_SHOWN = 5  # rule queries named in an alert's header; the rest are counted
RULE_CHARS = 120  # a rule's query is cut to this many characters where it is shown
DIGEST_SNIPPET_CHARS = 200
DIGEST_SIGHTINGS = 3
MIN_SNIPPET_CHARS = 40


def rules_line(queries: Sequence[str]) -> str:
    """`🔔 Matched rule: <code>canada sanctions</code>` naming the first few rules, counting the rest."""
    if not queries:
        return "🔔 <b>New post</b>"
    shown = [f"<code>{escape(cut(q, RULE_CHARS))}</code>" for q in queries[:RULES_SHOWN]]
    if len(queries) > RULES_SHOWN:
        shown.append(f"+{len(queries) - RULES_SHOWN} more")
    label = "rule" if len(queries) == 1 else "rules"
    return f"🔔 Matched {label}: " + ", ".join(shown)


def render_alert(post: Post, rules: Sequence[str], spans: Sequence[tuple[int, int]] = (), *,
                 limit: int = LIMIT, size: int = SNIPPET_CHARS, files: Sequence[PostFile] = ()) -> Rendered:
    """One alert: the matched rules, then the post (origin and date, who carried it, what media it
    carries, a highlighted snippet around the match, links to the original and each sighting), in
    one message.

    The snippet shrinks until the whole message fits `limit` (escaping can grow text up to 6x), so
    the highlight survives; only a pathological post falls back to `pack`'s plain-text cut.
    """
    header = rules_line(rules)
    while True:
        message = header + "\n" + render_post(post, spans, size, files=files)
        if utf16_len(message) <= limit or size <= MIN_SNIPPET_CHARS:
            break
        size = max(size // 2, MIN_SNIPPET_CHARS)
    return pack([message], limit)


def render_caption(post: Post, rules: Sequence[str], spans: Sequence[tuple[int, int]] = (),
                   files: Sequence[PostFile] = (), limit: int = CAPTION_LIMIT) -> str | None:
    """An alert as a photo's caption (at most 1024 characters of text once Telegram has parsed the
    HTML; UTF-16 units, as Telegram counts): the snippet shrinks, then the links to sightings, as for a
    message; None when even the smallest will not fit (send it as text)."""
    header = rules_line(rules)
    attempts = [(size, 8) for size in (SNIPPET_CHARS, 300, 150, 80, MIN_SNIPPET_CHARS)]
    attempts += [(MIN_SNIPPET_CHARS, links) for links in (3, 1, 0)]
    for size, links in attempts:
        caption = header + "\n" + render_post(post, spans, size, links, files)
        if utf16_len(html.unescape(_strip_tags(caption))) <= limit:
            return caption
    return None


def render_digest_item(post: Post, spans: Sequence[tuple[int, int]] = (), also: Sequence[str] = (),
                       size: int = DIGEST_SNIPPET_CHARS, files: Sequence[PostFile] = ()) -> str:
    """A post as a compact digest entry: origin, who carried it, its media, a short snippet, a few links."""
    lines = [render_post(post, spans, size, DIGEST_SIGHTINGS, files)]
    if also:
        lines.append("also matches: " + ", ".join(f"<code>{escape(cut(q, RULE_CHARS))}</code>"
                                                  for q in also[:RULES_SHOWN]))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One post in a digest, under one rule; `key` travels with it (the dispatcher's alert id)."""

    post: Post
    key: int
    spans: tuple[tuple[int, int], ...] = ()
    also: tuple[str, ...] = ()
    files: tuple[PostFile, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestGroup:
    """The posts of a digest filed under one rule (`rule` is its query text)."""

    rule: str
    entries: tuple[DigestEntry, ...]


def render_digest(groups: Sequence[DigestGroup], title: str = "Digest",
                  limit: int = LIMIT) -> list[tuple[str, tuple[int, ...]]]:
    """A digest as messages under `limit`, each with the keys of the posts it carries.

    Posts are grouped by rule with a count and links; a rule's heading travels with its first post,
    and a long digest is split between posts, never inside one.
    """
    total = sum(len(g.entries) for g in groups)
    head = f"🗞 <b>{escape(title)}</b> · {total} post{'s' if total != 1 else ''}"
    blocks: list[tuple[str, tuple[int, ...]]] = [(head, ())]
    for group in groups:
        count = len(group.entries)
        heading = (f"📌 <code>{escape(cut(group.rule, RULE_CHARS))}</code> — "
                   f"{count} post{'s' if count != 1 else ''}")
        for i, entry in enumerate(group.entries):
            block = render_digest_item(entry.post, entry.spans, entry.also, files=entry.files)
            if utf16_len(block) > limit // 2:
                block = render_digest_item(entry.post, entry.spans, entry.also, size=MIN_SNIPPET_CHARS,
                                           files=entry.files)
            blocks.append((heading + "\n\n" + block if i == 0 else block, (entry.key,)))
    return pack_keyed(blocks, limit)


def pack_keyed(blocks: Sequence[tuple[str, Sequence[int]]], limit: int = LIMIT,
               separator: str = "\n\n") -> list[tuple[str, tuple[int, ...]]]:
    """`pack`, keeping track of which keys (e.g. alert ids) ended up in each message."""
    out: list[tuple[str, tuple[int, ...]]] = []
    current, keys = "", []
    for block, block_keys in blocks:
        block = pack([block], limit).messages[0] if block else block
        candidate = block if not current else current + separator + block
        if utf16_len(candidate) <= limit:
            current = candidate
        else:
            out.append((current, tuple(keys)))
            current, keys = block, []
        keys.extend(block_keys)
    if current:
        out.append((current, tuple(keys)))
    return out
