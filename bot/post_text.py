"""How the whole record of a post (`storage.post_record`) reads: the words both `chanwatch show` and
the bot's /post use (deletion intervals, reactions, a version's heading), and /post's Telegram HTML,
within the 4096-character limit. Pure functions; everything from the archive is escaped.
"""

from __future__ import annotations

from bot.formatting import LIMIT, channel_label, cut, escape, human_size, link, minute, pack, utf16_len
from storage.post_record import PostRecord, Sighting, Version
from storage.records import PostFile, parse_iso
from storage.sparkline import curve_text, delay_text, sparkline
from storage.word_diff import html_diff, word_diff

__all__ = ["VIA", "deletion_text", "file_text", "reactions_text", "record_html", "sighting_name",
           "version_head", "views_curve", "when"]

VIA = {"recheck": "re-check", "sweep": "sweep", "update": "live update"}
"""How each way of seeing a deletion (`messages.deleted_via`) is named."""
TOP_REACTIONS = 3
DIFF_TAGS = ("del", "u")  # struck through, underlined: Telethon's HTML has no <ins>
FILES_SHOWN = 10  # files /post lists
SHRINK = ((3000, 10, 20), (1000, 5, 10), (400, 3, 6), (200, 2, 4), (120, 1, 3), (80, 1, 2), (60, 1, 1),
          (40, 1, 0))
"""/post's attempts, until one fits: characters of text, versions per sighting, sightings in detail."""


def when(stamp: str) -> str:
    """A stamp to the minute, with its zone: '2025-12-17 10:00 UTC'."""
    return minute(stamp) + " UTC"


def sighting_name(s: Sighting) -> str:
    """'@rusembc/500', or the title / id for a channel without a username."""
    return f"{channel_label(s.username, s.title, s.channel_id)}/{s.message_id}"


def deletion_text(s: Sighting) -> str | None:
    """'deleted between A and B (sweep)', 'deleted at T (live update)', or None while it stands. A live
    update says when it happened; a re-read only that it happened since the message was last seen."""
    if s.deleted_at is None:
        return None
    via = VIA.get(s.deleted_via or "", s.deleted_via or "unknown")
    if s.deleted_via == "update" or not s.last_seen:
        word = "at" if s.deleted_via == "update" else "by"
        return f"deleted {word} {when(s.deleted_at)} ({via})"
    return f"deleted between {when(s.last_seen)} and {when(s.deleted_at)} ({via})"


def _reaction_label(key: str) -> str:
    if key.startswith("custom:"):
        return "custom emoji"
    return "⭐ paid" if key == "paid" else key


def reactions_text(reactions: dict[str, int] | None, top: int = TOP_REACTIONS) -> str | None:
    """The most given reactions, 'most first: 👍 12 · ❤ 5 · custom emoji 3 (+2 more)'; None for none."""
    if not reactions:
        return None
    ranked = sorted(reactions.items(), key=lambda item: (-item[1], item[0]))
    shown = " · ".join(f"{_reaction_label(k)} {v:,}" for k, v in ranked[:top])
    return shown + (f" (+{len(ranked) - top} more)" if len(ranked) > top else "")


def views_curve(s: Sighting) -> str:
    """The sighting's views over time as a sparkline with its span, and its counts now."""
    curve = curve_text(sparkline([(at, r.views) for r in s.readings if (at := parse_iso(r.at)) is not None]))
    now = [f"{value:,} {name if value != 1 else one}" for value, name, one in (
        (s.views, "views", "view"), (s.forwards, "forwards", "forward"), (s.replies, "replies", "reply"),
    ) if value is not None]
    parts = [curve, "now " + ", ".join(now) if now else None, reactions_text(s.reactions)]
    return " · ".join(p for p in parts if p)


def version_head(number: int, v: Version, s: Sighting, before: Version | None) -> str:
    """'2. edited 2025-12-17 10:30 UTC (now) · media photo → video · no raw JSON'."""
    if before is None:
        head = f"{number}. as first seen" + (f" (edited {when(v.edit_date)})" if v.edit_date else "")
    else:
        head = f"{number}. edited " + (when(v.edit_date) if v.edit_date else "(time unknown)")
        head += " (now)" if v.current else ""
    kind = (v.media or {}).get("kind")
    if before is not None and (before.media or {}) != (v.media or {}):
        head += f" · media {(before.media or {}).get('kind') or 'none'} → {kind or 'none'}"
    if not v.has_raw:
        head += " · no raw JSON"
    return head


def file_text(f: PostFile) -> str:
    """'document report.pdf · 2.1 MB · done · ab/cd/….pdf' (plain text)."""
    parts = [f.kind + (f" {f.file_name}" if f.file_name else "")]
    if f.size:
        parts.append(human_size(f.size))
    parts.append(f.state)
    if f.path:
        parts.append(f.path)
    return " · ".join(parts)


# -- /post -----------------------------------------------------------------------------------------

def _sighting_line(s: Sighting) -> str:
    views = f" · {s.views:,} views" if s.views is not None else ""
    gone = " · <b>deleted</b>" if s.deleted_at else ""
    return (f"{link(s.url, sighting_name(s).removeprefix('@'))} · {escape(s.relation)} · "
            f"{escape(delay_text(s.delay_s))}{views}{gone}")


def _sighting_block(s: Sighting, versions: int, text_chars: int) -> str:
    lines = [f"<b>{escape(sighting_name(s))}</b> · {escape(s.relation)} · {escape(when(s.date))}"]
    shown = s.versions if len(s.versions) <= versions else s.versions[-versions:]
    hidden = len(s.versions) - len(shown)
    if len(s.versions) > 1:
        if hidden:
            lines.append(f"… and {hidden} earlier version{'s' if hidden != 1 else ''}")
        for index, v in enumerate(shown, hidden):
            before = s.versions[index - 1] if index else None
            context = max(text_chars // 8, 10)
            body = (escape(cut(v.text, text_chars)) if before is None
                    else html_diff(word_diff(before.text, v.text), context=context, tags=DIFF_TAGS))
            lines.append(f"<i>{escape(version_head(index + 1, v, s, before))}</i>\n{body}")
    gone = deletion_text(s)
    if gone:
        lines.append("🗑 " + escape(gone))
    lines.append("📈 " + escape(views_curve(s)))
    return "\n".join(lines)


def record_html(record: PostRecord, limit: int = LIMIT) -> str:
    """/post: the origin, the text, every sighting with its delay, each sighting's versions (word diffs),
    deletion interval and engagement, and the files, as one message within `limit`. Longer records lose
    text first, then earlier versions, then sightings ("… and N more")."""
    origin = channel_label(record.origin_username, record.origin_title, record.origin_channel_id)
    date = link(record.origin_url, when(record.date)) if record.origin_url else escape(when(record.date))
    head = f"📢 <b>Post {record.post_id}</b> · {escape(origin)} · {date}"
    for chars, versions, sightings in SHRINK:
        message = _record_html(record, head, chars, versions, sightings)
        if utf16_len(message) <= limit:
            return message
    return pack([message], limit).messages[0]


def _record_html(record: PostRecord, head: str, chars: int, versions: int, sightings: int) -> str:
    blocks = [head]
    if record.text:
        blocks.append(escape(cut(record.text, chars)))
    elif record.media_kind:
        blocks.append(f"<i>[{escape(record.media_kind)}]</i>")
    listed = record.sightings[:max(sightings, 1) * 2]
    lines = [f"<b>{len(record.sightings)} sighting{'s' if len(record.sightings) != 1 else ''}</b>"]
    lines += [_sighting_line(s) for s in listed]
    if len(record.sightings) > len(listed):
        lines.append(f"… and {len(record.sightings) - len(listed)} more")
    blocks.append("\n".join(lines))
    detailed = record.sightings[:sightings]
    blocks += [_sighting_block(s, versions, chars) for s in detailed]
    if len(record.sightings) > len(detailed) and detailed:
        blocks.append(f"… and {len(record.sightings) - len(detailed)} more sightings: "
                      "<code>chanwatch show</code> prints them all")
    if record.files:
        shown = record.files[:FILES_SHOWN]
        more = len(record.files) - len(shown)
        blocks.append("\n".join(["📎 " + escape(file_text(f)) for f in shown]
                                + ([f"… and {more} more files"] if more else [])))
    return "\n\n".join(blocks)
