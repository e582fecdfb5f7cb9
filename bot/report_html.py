"""The reports as HTML: the amplification, channel and query reports each as one fragment (a
`<section class="report">` of tables and `bot.charts` SVG), and `page()`, the self-contained document
around a fragment that `chanwatch report --format html` writes (and the bot sends, the web view shows).

The figures are `storage.reports`'s; this module only lays them out. Everything from the archive
(names, post texts, the query) is escaped; post texts are flattened and clipped. The page has its CSS
inline and no script, link, image or URL: it opens offline, from a file or an attachment.

Example: `page("Amplification", amplification_html(amplification(conn)))`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from bot.charts import bar_chart, distribution_chart, matrix_chart, timeline_chart
from bot.formatting import cut, duration, escape, minute
from storage.reports import DELAY_BUCKETS, Amplification, ChannelReport, DayCount, PostFigures, QueryTimeline

__all__ = ["amplification_html", "channel_html", "page", "query_html"]

POST_CHARS = 160
"""A post's text in a table is clipped to this many characters (the archive has the whole)."""

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0; background: #fff; }
main { max-width: 1000px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 24px 0 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.window, p.key { color: #666; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { padding: 3px 10px 3px 0; border-bottom: 1px solid #eee; text-align: left; vertical-align: top;
         white-space: nowrap; }
th { font-weight: 600; border-bottom: 1px solid #ccc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { max-width: 520px; white-space: normal; }
svg.chart { display: block; margin: 8px 0 16px; }
footer { color: #888; font-size: 12px; max-width: 1000px; margin: 0 auto; padding: 0 24px 24px; }
"""


AMPLIFIER_KEY = ('<p class="key">fwd: forwarded with attribution; copy: re-posted without; median, '
                 "p90, max: delay after the origin; own: its own posts; edited, deleted: posts it carried "
                 "that the origin later edited or deleted.</p>")
"""What the amplifier tables' short column names mean."""


def _esc(text: object) -> str:
    return escape(str(text))


def _text(text: str) -> str:
    """A post's text on one line, clipped to POST_CHARS (not yet escaped)."""
    return cut(" ".join(text.split()), POST_CHARS)


@dataclass(frozen=True)
class Link:
    """A table cell that links somewhere (both parts escaped): the web view's post pages."""

    href: str
    text: str


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = (),
           wide: Sequence[int] = ()) -> str:
    """One table, every cell escaped; columns numbered in `numeric` right-aligned (figures), in
    `wide` allowed to wrap (post texts)."""
    def cell(tag: str, i: int, value: object) -> str:
        cls = ' class="num"' if i in numeric else ' class="text"' if i in wide else ""
        if isinstance(value, Link):
            return f'<{tag}{cls}><a href="{_esc(value.href)}">{_esc(value.text)}</a></{tag}>'
        return f"<{tag}{cls}>{_esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _window(since: str | None, until: str | None, first: str, last: str) -> str:
    return f"{since or first} to {until or last} (UTC)"


def _views(views: int | None) -> str:
    return "-" if views is None else f"{views:,}"


def _series(days: Sequence[DayCount]) -> dict[str, list[tuple[date, int]]]:
    """Messages per day per channel name, for `timeline_chart`."""
    series: dict[str, list[tuple[date, int]]] = {}
    for day in days:
        series.setdefault(day.name, []).append((date.fromisoformat(day.day), day.messages))
    return series


def amplification_html(report: Amplification, post_href: Callable[[int], str] | None = None) -> str:
    """The amplification report: origins, each origin's amplifiers, the carry matrix (origin ×
    amplifier, share carried), the delay distribution per amplifier, messages per day per channel,
    the most amplified posts and the posts no one carried. `post_href(post_id)`: where a post's date
    links to (the web view's post page); none in the self-contained file, which links nowhere."""
    window = _window(report.since, report.until, "the first post", "the last")
    parts = ['<section class="report amplification">', "<h2>Amplification report</h2>",
             f'<p class="window">Posts from {_esc(window)}.</p>']
    if not report.origins:
        parts.append("<p>No origin posts carried by another channel in this window.</p></section>")
        return "".join(parts)
    names = {o.channel_id: o.name for o in report.origins}
    parts += ["<h3>Origins</h3>", _table(("channel", "posts", "carried", "share"), [
        (o.name, f"{o.posts:,}", f"{o.carried:,}", f"{o.share:.0%}") for o in report.origins],
        numeric=(1, 2, 3))]
    headers = ("channel", "carried", "share", "fwd", "copy", "median", "p90", "max", "own", "edited",
               "deleted")
    for origin in report.origins:
        mine = [a for a in report.amplifiers if a.origin_id == origin.channel_id]
        if mine:
            parts += [f"<h3>Amplifiers of {_esc(origin.name)}</h3>", AMPLIFIER_KEY, _table(headers, [
                (a.name, a.carried, f"{a.share:.0%}", a.forwards, a.copies, duration(a.median_delay_s),
                 duration(a.p90_delay_s), duration(a.max_delay_s), a.own_posts, a.carried_edited,
                 a.carried_deleted) for a in mine], numeric=range(1, len(headers)))]
    carriers = list(dict.fromkeys(a.name for a in report.amplifiers))
    shares = {(names[a.origin_id], a.name): round(a.share * 100) for a in report.amplifiers}
    parts += ["<h3>Carry matrix</h3>", matrix_chart(
        [o.name for o in report.origins], carriers, shares,
        title="Share of each origin's posts each channel carried (%)")]
    amplifier = {(a.origin_id, a.channel_id): a.name for a in report.amplifiers}

    def row_label(origin_id: int, channel_id: int) -> str:
        """The amplifier's name, after its origin's when there are several origins."""
        name = amplifier.get((origin_id, channel_id), str(channel_id))
        return f"{names.get(origin_id, origin_id)} → {name}" if len(report.origins) > 1 else name

    rows = [(row_label(d.origin_id, d.channel_id), d.counts) for d in report.delays]
    parts += ["<h3>Delay after the origin</h3>",
              distribution_chart(rows, DELAY_BUCKETS, title="Carried posts by delay after the origin")]
    parts += ["<h3>Messages per day</h3>",
              timeline_chart(_series(report.timeline), title="Messages per day per channel (UTC)")]
    parts += ["<h3>Most amplified posts</h3>", _posts(report.top_posts, names, post_href, carried=True)]
    if report.uncarried_posts:
        parts += ["<h3>Posts no one carried (latest)</h3>",
                  _posts(report.uncarried_posts, names, post_href, carried=False)]
    parts.append("</section>")
    return "".join(parts)


def _posts(posts: Sequence[PostFigures], names: dict[int, str], post_href: Callable[[int], str] | None,
           *, carried: bool) -> str:
    """A table of origin posts, their text clipped; with their spread when `carried`."""
    def when(p: PostFigures) -> object:
        return minute(p.date) if post_href is None else Link(post_href(p.post_id), minute(p.date))

    if carried:
        return _table(("date", "origin", "channels", "sightings", "views", "text"), [
            (when(p), names.get(p.origin_id, p.origin_id), p.channels, p.sightings, _views(p.views),
             _text(p.text)) for p in posts], numeric=(2, 3, 4), wide=(5,))
    return _table(("date", "origin", "text"), [
        (when(p), names.get(p.origin_id, p.origin_id), _text(p.text)) for p in posts], wide=(2,))


def channel_html(report: ChannelReport) -> str:
    """One channel's activity: messages per day by relation, per hour of day, languages, top
    hashtags and where what it carried comes from."""
    window = _window(report.since, report.until, "the first message", "the last")
    parts = ['<section class="report channel">', f"<h2>Channel {_esc(report.name)}</h2>",
             f'<p class="window">{report.messages:,} messages from {_esc(window)}.</p>']
    if not report.messages:
        return "".join(parts) + "</section>"
    by_relation = {"own posts": [(date.fromisoformat(d.day), d.originals) for d in report.days],
                   "forwards": [(date.fromisoformat(d.day), d.forwards) for d in report.days],
                   "copies": [(date.fromisoformat(d.day), d.copies) for d in report.days]}
    parts += ["<h3>Messages per day</h3>", timeline_chart(by_relation, title="Messages per day (UTC)")]
    parts += ["<h3>Hours of day</h3>", bar_chart([(f"{h:02d}:00", n) for h, n in enumerate(report.hours)],
                                                  title="Messages per hour of day (UTC)")]
    parts += ["<h3>Languages</h3>", bar_chart(list(report.languages), title="Messages per language")]
    if report.hashtags:
        parts += ["<h3>Top hashtags</h3>",
                  bar_chart([("#" + tag, n) for tag, n in report.hashtags], title="Messages per hashtag")]
    if report.sources:
        parts += ["<h3>Where what it carried comes from</h3>", _table(("origin", "forwards", "copies"), [
            (s.name, s.forwards, s.copies) for s in report.sources], numeric=(1, 2))]
    parts.append("</section>")
    return "".join(parts)


def query_html(timeline: QueryTimeline) -> str:
    """A query's matches over time: a line per channel of its messages carrying a matching post per
    day, and the same as a table."""
    verb = "post matches" if timeline.posts == 1 else "posts match"
    parts = ['<section class="report query">', f"<h2>Query {_esc(timeline.query)}</h2>",
             f'<p class="window">{timeline.posts:,} {verb} the query.</p>']
    if timeline.days:
        parts += ["<h3>Matches per day</h3>",
                  timeline_chart(_series(timeline.days),
                                 title="Messages with a match per day per channel (UTC)"),
                  _table(("day", "channel", "messages"), [(d.day, d.name, d.messages) for d in timeline.days],
                         numeric=(2,))]
    parts.append("</section>")
    return "".join(parts)


def page(title: str, body: str) -> str:
    """One self-contained HTML document around a fragment: inline CSS, no script, no URL; it is also
    well-formed XML (void elements closed), so a test or a tool can parse it whole."""
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main><h1>{_esc(title)}</h1>{body}</main>"
            "<footer>Written by chanwatch from its archive; this file needs no network.</footer>"
            "</body></html>\n")
