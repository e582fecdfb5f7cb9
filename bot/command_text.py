"""What the bot's command answers say: help, query errors with a caret, result pages, rules, channels,
status and the /report summaries. Pure functions returning Telegram HTML (everything user- or
archive-supplied escaped), each message within Telegram's 4096-character limit. /status shows
`storage.stats.ArchiveStats`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from bot.formatting import (
    LIMIT,
    channel_label,
    cut,
    escape,
    human_size,
    minute,
    pack,
    render_post,
    utf16_len,
)
from storage.leases import DISPATCHER, ReaderRow
from storage.query import QueryError
from storage.records import MediaStatus, Post, PostFile, Rule, Subscriber, WatchedChannel
from storage.reports import Amplification, ChannelReport, QueryTimeline
from storage.stats import ArchiveStats

PAGE_SIZE = 5
PREVIOUS, NEXT = "« Previous", "Next »"  # the page buttons under search results
QUERY_SHOWN = 120  # a query is cut to this many characters where an answer repeats it
CARET_WIDTH = 60  # characters of a bad query shown around the culprit
RESULT_SNIPPET = 500
RESULT_LINKS = 8  # links to sightings under a result, when the page has room
MIN_SNIPPET = 40

SYNTAX = (
    "<b>Query syntax</b>\n"
    "<code>canada sanctions</code> both words, any form (sanction ~ sanctions, Канада ~ Канады)\n"
    "<code>canada OR arctic</code> either · <code>-visa</code> or <code>NOT visa</code> without · "
    "<code>( )</code> group\n"
    "<code>\"foreign minister\"</code> exact words · <code>lavr*</code> prefix · "
    "<code>#RussiaAfrica</code> hashtag\n"
    "<code>channel:rusembc</code> carried by · <code>from:MFARussia</code> posted first by\n"
    "<code>since:2025-12-01</code> <code>until:2025-12-31</code> <code>lang:ru</code>\n"
    "<code>is:forward</code> <code>is:original</code> <code>is:copy</code> <code>is:edited</code> "
    "<code>is:deleted</code> · <code>sort:rank</code> best match first (default: newest)"
)

COMMANDS = (
    ("search", "QUERY", "search the archive", "/search canada sanctions"),
    ("subscribe", "QUERY", "alert this chat about new posts that match", "/subscribe lavrov from:MFARussia"),
    ("rules", "", "this chat's saved searches, with their ids", "/rules"),
    ("unsubscribe", "ID", "remove one of them", "/unsubscribe 3"),
    ("mode", "instant|digest [cron [time zone]]", "alerts at once, or in a digest on a schedule",
     "/mode digest 0 8 * * 1-5 Europe/Moscow"),
    ("pause", "", "hold alerts (they keep queueing)", "/pause"),
    ("resume", "", "send them again", "/resume"),
    ("post", "ID", "the whole record of one post: every sighting, edit, deletion and its views over time",
     "/post https://t.me/MFARussia/5678"),
    ("report", "amplification|channel|query …",
     "reports with charts (a summary and an HTML file): who carried whose posts, a channel, a topic",
     "/report amplification 7d @MFARussia"),
    ("channels", "", "watched channels, their status and last posts", "/channels"),
    ("status", "", "archive size, posts today, pending alerts, last poll", "/status"),
    ("help", "", "this message", "/help"),
)

ADMIN_COMMANDS = (
    ("watch", "@channel", "start archiving a public channel", "/watch @rusembc"),
    ("unwatch", "@channel", "stop polling it (its posts stay)", "/unwatch @rusembc"),
    ("allow", "CHAT_ID", "let a chat use the bot (in a group, /allow alone)", "/allow -1001234567890"),
    ("deny", "CHAT_ID", "shut a chat out and stop its alerts", "/deny -1001234567890"),
)

EXAMPLE_QUERY = "canada sanctions -visa"


def _command_lines(commands: Sequence[tuple[str, str, str, str]]) -> list[str]:
    lines = []
    for name, args, what, example in commands:
        usage = f"/{name}" + (f" {escape(args)}" if args else "")
        shown = f" — e.g. <code>{escape(example)}</code>" if args else ""
        lines.append(f"{usage} — {escape(what)}{shown}")
    return lines


def help_text(bot_username: str | None, admin: bool) -> str:
    """/start and /help: what the bot does, every command with an example, the query syntax."""
    lines = [
        "👋 <b>chanwatch</b> archives public Telegram channels, finds where a forwarded post came "
        "from, and alerts you when a new post matches your saved searches.",
        "",
        *_command_lines(COMMANDS),
    ]
    if bot_username:
        lines += ["", f"In a group, address me: <code>/search@{escape(bot_username)} canada</code>"]
    if admin:
        lines += ["", "<b>Admins</b>", *_command_lines(ADMIN_COMMANDS)]
    return "\n".join([*lines, "", SYNTAX])


def short_help(command: str) -> str:
    """The answer to an unknown command."""
    return f"I don't know <code>/{escape(cut(command, 40))}</code>. Send /help for the list of commands."


def usage(name: str) -> str:
    """How to call a command, with an example (for a missing or malformed argument)."""
    for cmd, args, what, example in COMMANDS + ADMIN_COMMANDS:
        if cmd == name:
            return (f"Usage: <code>/{cmd} {escape(args)}</code> — {escape(what)}.\n"
                    f"Example: <code>{escape(example)}</code>")
    return "Send /help for the list of commands."


def shown_query(text: str) -> str:
    """A query as answers repeat it: on one line, cut, escaped, in <code>."""
    return f"<code>{escape(cut(' '.join(text.split()), QUERY_SHOWN))}</code>"


def caret_lines(query: str, position: int, width: int = CARET_WIDTH) -> tuple[str, str]:
    """The part of `query` around `position` on one line, and a line with ^ under that position."""
    flat = "".join(" " if ch.isspace() or not ch.isprintable() else ch for ch in query)
    position = max(0, min(position, len(flat)))
    if len(flat) <= width:
        return flat, " " * position + "^"
    start = max(0, min(position - width // 2, len(flat) - width))
    end = start + width
    shown = ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
    return shown, " " * (position - start + (1 if start else 0)) + "^"


def query_error(command: str, query: str, exc: QueryError) -> str:
    """A bad query: what is wrong, where (a caret under the culprit), the hint and an example."""
    line, caret = caret_lines(query, exc.position)
    return (
        f"❌ <b>Bad query:</b> {escape(exc.message)}\n"
        f"<code>{escape(line)}\n{caret}</code>\n"
        f"💡 {escape(exc.hint)}\n"
        f"Example: <code>/{escape(command)} {escape(EXAMPLE_QUERY)}</code> · /help shows the syntax"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def results_page(query_text: str, posts: Sequence[Post], spans: Sequence[Sequence[tuple[int, int]]],
                 total: int, offset: int, page_size: int = PAGE_SIZE, limit: int = LIMIT,
                 total_exact: bool = True, unknown_channels: Sequence[str] = (),
                 files: Mapping[int, Sequence[PostFile]] | None = None) -> str:
    """One page of search results as one message: a header, then each post highlighted, with its
    media (`files` by post id, from `storage.media_queue.files_of_post`).

    Snippets shrink until the page fits `limit`, so a page is always a single (editable) message.
    When `total_exact` is False, `total` is a lower bound: "5,000+ posts", and no page count.
    """
    if total == 0:
        hint = "Try fewer words, a prefix like <code>lavr*</code>, or OR: <code>canada OR arctic</code>."
        if unknown_channels:
            names = ", ".join(f"<code>{escape(n)}</code>" for n in unknown_channels)
            hint = (f"The archive knows no channel {names}: check the spelling; /channels lists "
                    "the watched ones.")
        return f"🔎 No posts match {shown_query(query_text)}.\n{hint}"
    page_no = offset // page_size + 1
    if total_exact:
        pages = (total + page_size - 1) // page_size
        header = f"🔎 <b>{_plural(total, 'post')}</b> for {shown_query(query_text)} · page {page_no}/{pages}"
    else:
        header = f"🔎 <b>{total:,}+ posts</b> for {shown_query(query_text)} · page {page_no}"
    if not posts:
        return header + "\n\nNo more results here: the archive changed. Send the search again."
    # Shrink the snippets first, then the links to sightings, until the page fits.
    attempts = [(size, RESULT_LINKS) for size in (RESULT_SNIPPET, 250, 120, MIN_SNIPPET)]
    attempts += [(MIN_SNIPPET, links) for links in (3, 1, 0)]
    for size, links in attempts:
        blocks = [header] + [f"<b>{offset + i + 1}.</b> " + render_post(post, post_spans, size, links,
                                                                     (files or {}).get(post.id, ()))
                             for i, (post, post_spans) in enumerate(zip(posts, spans, strict=True))]
        message = "\n\n".join(blocks)
        if utf16_len(message) <= limit:
            return message
    return pack(blocks, limit).messages[0]


def post_not_found(exc: ValueError) -> str:
    """/post with a reference that finds nothing: what is wrong and the forms accepted."""
    return f"❌ {escape(cut(str(exc), 600))}\nExample: <code>/post 1234</code>"


def subscribed(rule: Rule, created: bool, recent: int, days: int) -> str:
    """The answer to /subscribe."""
    verb = "Saved" if created else "You already have"
    return (f"✅ {verb} rule <b>{rule.id}</b>: {shown_query(rule.query)}\n"
            f"It would have matched {_plural(recent, 'archived post')} in the last {days} days.\n"
            f"Remove it with <code>/unsubscribe {rule.id}</code>.")


def mode_line(sub: Subscriber | None, default_schedule: str, default_timezone: str = "UTC") -> str:
    """How this chat gets alerts: instant or digest (with its schedule and zone), paused or not."""
    if sub is None or sub.mode == "instant":
        line = "Alerts: <b>instant</b>"
    else:
        schedule = sub.digest_schedule or default_schedule
        zone = sub.timezone or default_timezone
        line = f"Alerts: <b>digest</b> at <code>{escape(schedule)}</code> ({escape(zone)})"
    if sub is not None and sub.paused:
        line += " · <b>paused</b> (/resume)"
    return line


def rules_text(rules: Sequence[Rule], sub: Subscriber | None, default_schedule: str,
               default_timezone: str = "UTC") -> list[str]:
    """/rules: each rule with its id, and how alerts are delivered; split under the limit."""
    mode = mode_line(sub, default_schedule, default_timezone)
    if not rules:
        return ["You have no rules yet. Add one: <code>/subscribe canada sanctions</code>\n" + mode]
    head = f"📋 <b>{_plural(len(rules), 'rule')}</b> · {mode}"
    lines = [f"<b>{r.id}</b> · {shown_query(r.query)}" + ("" if r.active else " (inactive)") for r in rules]
    return list(pack([head, *lines, "Remove one with <code>/unsubscribe ID</code>."],
                     separator="\n").messages)


def _when(value: str | None) -> str:
    return minute(value) + " UTC" if value else "never"


def channels_text(rows: Sequence[WatchedChannel]) -> list[str]:
    """/channels: one line per watched channel with status, last post and last successful poll."""
    if not rows:
        return ["No channels are watched yet." + " An admin can add one: <code>/watch @channel</code>"]
    lines = [f"📡 <b>{_plural(len(rows), 'watched channel')}</b>"]
    for row in rows:
        name = escape(channel_label(row.username, row.title, row.id))
        mark = "✅" if row.status == "ok" else "⚠️"
        status = escape(row.status) + (f" ({escape(cut(row.status_detail, 80))})" if row.status_detail
                                       and row.status != "ok" else "")
        lines.append(f"{mark} {name} · {status} · last post {_when(row.last_post)} · "
                     f"polled {_when(row.last_success)}")
    return list(pack(lines, separator="\n").messages)


def media_line(media: MediaStatus) -> str:
    """/status's media queue: 'Media: 120 stored (1.2 GB) · 4 queued · 2 skipped · 1 failed'."""
    line = (f"Media: {media.done} stored ({human_size(media.stored_bytes)}) · {media.queued} queued · "
            f"{media.skipped} skipped · {media.failed} failed")
    return ("⚠️ " if media.failed else "") + line


SOURCE_NAMES = {"api": "API", "web": "web preview"}


def sources_line(sources: Sequence[str | None], default: str) -> str:
    """How the watched channels are read, from each one's own source (None: `default`):
    'API 2 · web preview 1'; '' with no channel."""
    counted = Counter(source or default for source in sources)
    return " · ".join(f"{SOURCE_NAMES[s]} {counted[s]}" for s in ("api", "web") if counted[s])


READERS_SHOWN = 10  # readers listed by name in /status; the rest are counted


def readers_lines(readers: Sequence[ReaderRow]) -> list[str]:
    """/status's readers block (none when no reader ever ran on the archive): each reader's name,
    channels and whether it is alive, and who dispatches the alerts."""
    if not readers:
        return []
    alive = sum(r.alive for r in readers)
    lines = [f"👥 <b>Readers</b>: {alive} of {len(readers)} alive"]
    for reader in readers[:READERS_SHOWN]:
        state = "alive" if reader.alive else "not seen"
        lines.append(f"{'🟢' if reader.alive else '🔴'} {escape(reader.name)}: "
                     f"{_plural(reader.channels, 'channel')} · {state}")
    if len(readers) > READERS_SHOWN:
        lines.append(f"+{len(readers) - READERS_SHOWN} more")
    dispatcher = next((r.name for r in readers if DISPATCHER in r.roles), None)
    lines.append(f"Alerts sent by: {escape(dispatcher) if dispatcher else 'no reader now'}")
    return lines


def status_text(stats: ArchiveStats, media: MediaStatus | None = None, sources: str = "",
                readers: Sequence[ReaderRow] = ()) -> str:
    """/status: archive size, today's posts, pending alerts, last poll, how the channels are read
    (`sources`, see `sources_line`), channels in trouble, and the media download queue (`media`,
    None when downloads are off and nothing was ever queued), with a warning while a full media disk
    pauses downloads; then the readers sharing the archive (`readers_lines`), when any ran."""
    lines = [
        "📊 <b>Archive</b>",
        f"{_plural(stats.posts, 'post')}, {_plural(stats.sightings, 'sighting')}",
        f"New posts today (UTC): {stats.posts_today}",
        f"Alerts pending: {stats.alerts_pending}",
        f"Last poll: {_when(stats.last_poll)}",
        f"Watched channels: {stats.watched}",
    ]
    if sources:
        lines.append(f"Read by: {sources}")
    if media is not None:
        lines.append(media_line(media))
        if media.full_since:  # set until a later run runs to the end
            lines.append("⚠️ media downloads paused: the disk holding the media store is full "
                         f"(since {media.full_since[11:16]} UTC)")
    if stats.channel_errors:
        errors = [channel_label(*row) for row in stats.channel_errors]
        names = ", ".join(escape(n) for n in errors[:10])
        more = f", +{len(errors) - 10} more" if len(errors) > 10 else ""
        lines.append(f"⚠️ Channels with errors: {len(errors)} — {names}{more}")
    else:
        lines.append("No channel errors.")
    block = readers_lines(readers)
    return "\n".join(lines + ([""] + block if block else []))


# -- /report ----------------------------------------------------------------------------------------

REPORT_WIDTH = 40  # columns of a <pre> table: what a phone shows without wrapping
REPORT_ROWS = 5  # rows of each summary table; the whole report is in the attached file
WINDOW_FORMS = ("<code>24h</code>, <code>7d</code>, <code>30d</code> (any number of hours or days up to now) "
                "or a span of UTC days: <code>2025-12-01..2025-12-31</code>")


def report_usage(note: str = "") -> str:
    """/report without (or with a wrong) report name: the three reports, each with an example."""
    lines = [note] if note else []
    lines += [
        "📈 <b>/report</b> — a summary here and the whole report with charts as an HTML file:",
        "<code>/report amplification [WINDOW] [@origin]</code> — who carried an origin's posts, how, "
        "how fast; e.g. <code>/report amplification 7d @MFARussia</code>",
        "<code>/report channel @name [WINDOW]</code> — one channel's days, hours, languages, hashtags "
        "and sources; e.g. <code>/report channel @rusembc 30d</code>",
        "<code>/report query QUERY</code> — a search's matches per day and channel; e.g. "
        f"<code>/report query {escape(EXAMPLE_QUERY)}</code>",
        f"WINDOW: {WINDOW_FORMS}; the last 7 days when left out.",
    ]
    return "\n".join(lines)


def report_bad_window(token: str, why: str = "") -> str:
    """A window /report cannot read: what was given and the forms it accepts."""
    return (f"❌ I can't read the window <code>{escape(cut(token, 60))}</code>{escape(why)}.\n"
            f"Give {WINDOW_FORMS}.")


def report_unknown_channel(name: str) -> str:
    """/report naming a channel the archive does not have."""
    return (f"❌ The archive knows no channel <code>@{escape(cut(name, 60))}</code>. Check the spelling; "
            "/channels lists the watched ones.")


def _middle_cut(name: str, width: int) -> str:
    """`name` in `width` characters, cut in the middle: freedonia_in_canada -> freedoni…_canada, so
    channels sharing a prefix stay apart."""
    if len(name) <= width:
        return name
    head = width // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head):]


def short_delay(seconds: int) -> str:
    """A delay in at most 6 characters, for narrow tables: '45s', '35m', '1h5m', '3d4h'."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _pre(headers: Sequence[str], rows: Sequence[Sequence[object]], width: int = REPORT_WIDTH) -> str:
    """A <pre> table at most `width` columns wide: the first column (a name, a day) left-aligned and
    cut in the middle to the room the figures leave, the others right-aligned; everything escaped."""
    cells = [list(headers), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    room = max(6, width - sum(widths[1:]) - 2 * (len(widths) - 1))
    widths[0] = min(widths[0], room)
    lines = []
    for row in cells:
        first = _middle_cut(row[0], widths[0])
        lines.append("  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                                     strict=True))]).rstrip())
    return "<pre>" + escape("\n".join(lines)) + "</pre>"


def _span(since: str | None, until: str | None) -> str:
    return f"{since or 'the first day'} to {until or 'the last'} (UTC)"


def _fit(blocks: Sequence[str], tail: str, limit: int = LIMIT) -> str:
    """As many leading `blocks` as fit under `limit` with `tail` after them (the first always)."""
    shown = [blocks[0]]
    for block in blocks[1:]:
        if utf16_len("\n\n".join([*shown, block, tail])) > limit:
            break
        shown.append(block)
    return "\n\n".join([*shown, tail])


ATTACHED = "📎 The whole report, with its charts, is in the file below: open it in a browser."


def amplification_summary(report: Amplification, limit: int = LIMIT) -> str:
    """/report amplification: origins, each origin's top amplifiers (share, median delay) and the most
    amplified posts, in narrow tables within one message."""
    head = f"📈 <b>Amplification</b>, posts of {_span(report.since, report.until)}"
    if not report.origins:
        return f"{head}\nNo origin's post was carried by another channel in this window."
    blocks = [head + "\n" + _pre(("origin", "posts", "carried", "share"), [
        (o.name, o.posts, o.carried, f"{o.share:.0%}") for o in report.origins[:REPORT_ROWS]])]
    if len(report.origins) > REPORT_ROWS:
        blocks[0] += f"\n…and {len(report.origins) - REPORT_ROWS} more origins in the file"
    for origin in report.origins[:3]:
        mine = [a for a in report.amplifiers if a.origin_id == origin.channel_id]
        if mine:
            blocks.append(f"<b>Top amplifiers of {escape(origin.name)}</b>\n" + _pre(
                ("channel", "carried", "share", "median"),
                [(a.name, a.carried, f"{a.share:.0%}", short_delay(a.median_delay_s))
                 for a in mine[:REPORT_ROWS]]))
    if report.top_posts:
        names = {o.channel_id: o.name for o in report.origins}
        lines = ["<b>Most amplified posts</b>"]
        for i, post in enumerate(report.top_posts[:REPORT_ROWS], 1):
            views = "" if post.views is None else f" · {post.views:,} views"
            lines.append(f"{i}. {escape(minute(post.date))} · {escape(names.get(post.origin_id, ''))} · "
                         f"{_plural(post.channels, 'channel')}{views} · <code>/post {post.post_id}</code>\n"
                         f"{escape(cut(' '.join(post.text.split()), 140))}")
        blocks.append("\n".join(lines))
    if report.uncarried_posts:
        blocks.append(f"Posts no one carried: {len(report.uncarried_posts)}"
                      f"{'+' if len(report.uncarried_posts) >= 10 else ''} (listed in the file)")
    return _fit(blocks, ATTACHED, limit)


def channel_summary(report: ChannelReport, limit: int = LIMIT) -> str:
    """/report channel: messages in the window, the latest days by relation, busiest hours,
    languages, hashtags and sources, in narrow tables within one message."""
    head = (f"📡 <b>{escape(report.name)}</b>: {_plural(report.messages, 'message')}, "
            f"{_span(report.since, report.until)}")
    if not report.messages:
        return f"{head}\nNothing archived from this channel in this window."
    blocks = [head + "\n" + _pre(("day", "own", "fwd", "copy"), [
        (d.day, d.originals, d.forwards, d.copies) for d in report.days[-7:]])]
    busiest = sorted(range(24), key=lambda h: (-report.hours[h], h))[:3]
    blocks.append("Busiest hours (UTC): " + ", ".join(
        f"{h:02d}:00 ({report.hours[h]})" for h in busiest if report.hours[h]))
    if report.languages:
        blocks.append("Languages: " + ", ".join(f"{escape(lang)} {n}" for lang, n in report.languages[:5]))
    if report.hashtags:
        blocks.append("Top hashtags: " + ", ".join(f"#{escape(tag)} {n}" for tag, n in report.hashtags[:8]))
    if report.sources:
        blocks.append("<b>Where what it carried comes from</b>\n" + _pre(("origin", "fwd", "copy"), [
            (s.name, s.forwards, s.copies) for s in report.sources[:REPORT_ROWS]]))
    return _fit(blocks, ATTACHED, limit)


def cut_note(limit: int) -> str:
    """Said above an answer whose query was longer than the commands read (/search, /report query)."""
    return f"<i>(your query was cut to {limit} characters)</i>\n"


def query_summary(timeline: QueryTimeline, limit: int = LIMIT) -> str:
    """/report query: the matching posts, the channels that carried them most and the latest days."""
    verb = "matches" if timeline.posts == 1 else "match"
    head = f"🔎 <b>{_plural(timeline.posts, 'post')}</b> {verb} {shown_query(timeline.query)}"
    if not timeline.days:
        return head + "."
    per_channel: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    for day in timeline.days:
        per_channel[day.name] += day.messages
        per_day[day.day] += day.messages
    blocks = [head + "\n" + _pre(("channel", "messages"), per_channel.most_common(REPORT_ROWS)),
              "<b>Messages per day</b> (latest)\n" + _pre(("day", "messages"),
                                                         sorted(per_day.items())[-7:])]
    return _fit(blocks, ATTACHED, limit)
