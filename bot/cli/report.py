"""`chanwatch report amplification`: which of an origin's posts other channels carried, how and how
fast, as text for the terminal, JSON (the report's dataclass tree), CSV (the amplifier table) or HTML
(one self-contained page with charts, `bot.report_html`);
`chanwatch report query`: a search's matches per day per channel; `chanwatch report channel`: one
channel's activity.
The figures are `storage.reports`'s; this module only parses, opens read-only and prints."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from bot.cli.common import (
    EXIT_OK,
    CliError,
    Command,
    add_command_parser,
    archive_path,
    open_archive,
    plural,
)
from bot.cli.table import DEFAULT_WIDTH, output_width, table
from bot.formatting import duration, minute
from bot.report_html import amplification_html, channel_html, page, query_html
from storage.channels import channel_by_username
from storage.reports import (
    DELAY_BUCKETS,
    Amplification,
    ChannelReport,
    QueryTimeline,
    amplification,
    channel_report,
    days_window,
    query_timeline,
)

FORMATS = ("text", "json", "csv", "html")
CSV_COLUMNS = ("origin", "origin_posts", "channel", "carried", "share", "forwards", "copies",
               "median_delay_s", "p90_delay_s", "max_delay_s", "own_posts", "carried_edited",
               "carried_deleted")
"""The CSV is the amplifier table alone, one row per (origin, amplifier): the one rectangular table
a spreadsheet wants; the other sections are in the text and JSON outputs."""


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    amp = add_command_parser(sub, "amplification", help="who carried an origin's posts, how and how fast")
    amp.add_argument("--origin", metavar="NAME", help="only this origin channel (its username, @ optional)")
    amp.add_argument("--since", metavar="DATE", help="only posts from this day on (YYYY-MM-DD, UTC)")
    amp.add_argument("--until", metavar="DATE", help="only posts up to this day, inclusive (YYYY-MM-DD, UTC)")
    amp.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    amp.add_argument("--out", metavar="FILE", help="write the report to FILE instead of standard output")
    query = add_command_parser(sub, "query", help="a search's matches per day per channel: how a topic rose")
    # nargs="?" lets a QUERY start with - (bot.cli.app takes it); _report says when it is missing
    query.add_argument("query", metavar="QUERY", nargs="?", help="a search query, e.g. 'canada sanctions'")
    query.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    query.add_argument("--out", metavar="FILE", help="write the report to FILE instead of standard output")
    channel = add_command_parser(sub, "channel",
                                 help="one channel's days, hours, languages, hashtags and sources")
    channel.add_argument("name", metavar="NAME", help="the channel's username, @ optional")
    channel.add_argument("--since", metavar="DATE", help="only messages from this day on (YYYY-MM-DD, UTC)")
    channel.add_argument("--until", metavar="DATE",
                         help="only messages up to this day, inclusive (YYYY-MM-DD, UTC)")
    channel.add_argument("--format", choices=FORMATS, default="text",
                         help="output format (default text; csv: the days table)")
    channel.add_argument("--out", metavar="FILE", help="write the report to FILE instead of standard output")


def _window(args: argparse.Namespace) -> tuple[date | None, date | None]:
    """--since/--until as days, or a one-line error (argparse's own would add its usage lines)."""
    try:
        return days_window(args.since, args.until, ("--since", "--until"))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _channel_id(conn: sqlite3.Connection, name: str) -> int:
    """The channel filed under this username, or a one-line error saying where to look."""
    found = channel_by_username(conn, name.lstrip("@"))
    if found is None:
        raise CliError(f"no channel @{name.lstrip('@')} in the archive; "
                       "`chanwatch channels list` shows the watched ones")
    return found


def _report(args: argparse.Namespace) -> int:
    if args.report == "query":
        return _query_report(args)
    if args.report == "channel":
        return _channel_report(args)
    since, until = _window(args)
    with open_archive(archive_path(args), readonly=True) as conn:
        origin = None if args.origin is None else _channel_id(conn, args.origin)
        report = amplification(conn, origin, since, until)
    text = {"text": partial(amplification_text, width=_width(args.out)), "json": amplification_json,
            "csv": amplification_csv,
            "html": lambda r: page("chanwatch: amplification report", amplification_html(r)),
            }[args.format](report)
    return _write(text, args.out)


def _query_report(args: argparse.Namespace) -> int:
    if args.query is None:
        raise CliError("report query: give a query, e.g. chanwatch report query 'canada sanctions'")
    with open_archive(archive_path(args), readonly=True) as conn:
        timeline = query_timeline(conn, args.query)
    text = {"text": partial(query_text, width=_width(args.out)), "json": query_json, "csv": query_csv,
            "html": lambda t: page(f"chanwatch: query {t.query}", query_html(t))}[args.format](timeline)
    return _write(text, args.out)


def _channel_report(args: argparse.Namespace) -> int:
    since, until = _window(args)
    with open_archive(archive_path(args), readonly=True) as conn:
        report = channel_report(conn, _channel_id(conn, args.name), since, until)
    text = {"text": partial(channel_text, width=_width(args.out)), "json": channel_json,
            "csv": channel_csv,
            "html": lambda r: page(f"chanwatch: channel {r.name}", channel_html(r))}[args.format](report)
    return _write(text, args.out)


def _width(out: str | None) -> int:
    """The width of the text output: the terminal's on a terminal, 100 columns in a pipe or an --out file."""
    return DEFAULT_WIDTH if out is not None else output_width()


def _write(text: str, out: str | None) -> int:
    """The report on standard output, or in the file `out`."""
    if out is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}; choose another --out") from None
    return EXIT_OK


def _flat(text: str) -> str:
    """A text on one line (a table cell), its runs of whitespace and line breaks as one space."""
    return " ".join(text.split())


def amplification_text(report: Amplification, width: int = DEFAULT_WIDTH) -> str:
    """The report for a terminal `width` columns wide: one titled table per section."""
    names = {o.channel_id: o.name for o in report.origins}
    window = f"{report.since or 'the first post'} to {report.until or 'the last'}"
    lines = [f"Amplification report, posts from {window} (UTC)", ""]
    if not report.origins:
        return "\n".join([*lines, "No origin posts carried by another channel in this window.", ""])
    lines += ["Origins", *table(("channel", "posts", "carried", "share"), [
        (o.name, o.posts, o.carried, f"{o.share:.0%}") for o in report.origins], wrap=(0,), width=width), ""]
    for origin in report.origins:
        mine = [a for a in report.amplifiers if a.origin_id == origin.channel_id]
        if not mine:
            continue
        headers = ("channel", "carried", "share", "fwd", "copy", "median", "p90", "max", "own", "edited",
                   "deleted")
        lines += [f"Amplifiers of {origin.name}", *table(headers, [
            (a.name, a.carried, f"{a.share:.0%}", a.forwards, a.copies, duration(a.median_delay_s),
             duration(a.p90_delay_s), duration(a.max_delay_s), a.own_posts, a.carried_edited,
             a.carried_deleted) for a in mine], wrap=(0,), width=width), ""]
    carriers = {a.channel_id: a.name for a in report.amplifiers}
    lines += ["Delay after the origin (posts carried within)", *table(
        ("origin", "amplifier", *DELAY_BUCKETS),
        [(names.get(d.origin_id, str(d.origin_id)), carriers.get(d.channel_id, ""), *d.counts)
         for d in report.delays], left=(0, 1), wrap=(0, 1), width=width), ""]
    lines += ["Most amplified posts", *table(
        ("date", "origin", "channels", "sightings", "views", "text"),
        [(minute(p.date), names.get(p.origin_id, ""), p.channels, p.sightings,
          "-" if p.views is None else f"{p.views:,}", _flat(p.text)) for p in report.top_posts],
        left=(0, 1, 5), wrap=(1,), clip=(5,), width=width), ""]
    if report.uncarried_posts:
        lines += ["Posts no one carried (latest)", *table(
            ("date", "origin", "text"),
            [(minute(p.date), names.get(p.origin_id, ""), _flat(p.text)) for p in report.uncarried_posts],
            left=(0, 1, 2), wrap=(1,), clip=(2,), width=width), ""]
    lines += ["Messages per day", *table(
        ("day", "channel", "messages"), [(d.day, d.name, d.messages) for d in report.timeline],
        left=(0, 1), wrap=(1,), width=width), ""]
    return "\n".join(lines)


def _json(tree: Any) -> str:
    """A report's tree as one indented JSON object (a dataclass is written as its fields)."""
    return json.dumps(asdict(tree) if is_dataclass(tree) else tree, ensure_ascii=False, indent=1) + "\n"


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """One table as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def amplification_json(report: Amplification) -> str:
    """The report's dataclass tree as one JSON object, with each origin's share and the delay
    buckets' names beside their counts."""
    tree = asdict(report)
    for origin, figures in zip(tree["origins"], report.origins, strict=True):
        origin["share"] = figures.share
    tree["delay_buckets"] = list(DELAY_BUCKETS)
    return _json(tree)


def amplification_csv(report: Amplification) -> str:
    """The amplifier table as CSV (`CSV_COLUMNS`), with the origin's name and post count on each row."""
    origins = {o.channel_id: o for o in report.origins}
    return _csv(CSV_COLUMNS, (
        (origins[a.origin_id].name, origins[a.origin_id].posts, a.name, a.carried, f"{a.share:.4f}",
         a.forwards, a.copies, a.median_delay_s, a.p90_delay_s, a.max_delay_s, a.own_posts,
         a.carried_edited, a.carried_deleted) for a in report.amplifiers))


def query_text(timeline: QueryTimeline, width: int = DEFAULT_WIDTH) -> str:
    """A query's matches for a terminal `width` columns wide: the total, then day, channel and
    messages in columns."""
    verb = "matches" if timeline.posts == 1 else "match"
    head = f"{timeline.posts:,} {plural(timeline.posts, 'post')} {verb} {timeline.query!r}"
    if not timeline.days:
        return head + "\n"
    rows = [(d.day, d.name, d.messages) for d in timeline.days]
    return "\n".join([head, "", "Messages per day",
                      *table(("day", "channel", "messages"), rows, left=(0, 1), wrap=(1,), width=width), ""])


def query_json(timeline: QueryTimeline) -> str:
    """A query's matches as one JSON object: query, posts and the days."""
    return _json(timeline)


def query_csv(timeline: QueryTimeline) -> str:
    """A query's matches as CSV: one row per day and channel."""
    return _csv(("day", "channel_id", "channel", "messages"),
                ((d.day, d.channel_id, d.name, d.messages) for d in timeline.days))


BAR_WIDTH = 40


def channel_text(report: ChannelReport, width: int = DEFAULT_WIDTH) -> str:
    """One channel's activity for a terminal `width` columns wide: messages per day by relation, per
    hour (with a bar), languages, top hashtags and sources, each a titled table."""
    window = f"{report.since or 'the first message'} to {report.until or 'the last'}"
    lines = [f"Channel {report.name}: {report.messages:,} {plural(report.messages, 'message')} "
             f"from {window} (UTC)", ""]
    if not report.messages:
        return "\n".join(lines)
    lines += ["Messages per day", *table(("day", "own", "forwards", "copies"), [
        (d.day, d.originals, d.forwards, d.copies) for d in report.days], width=width), ""]
    most = max(report.hours)
    lines += ["Messages per hour of day (UTC)", *table(("hour", "messages", ""), [
        (f"{h:02d}", n, "█" * round(BAR_WIDTH * n / most)) for h, n in enumerate(report.hours)],
        left=(0, 2), clip=(2,), width=width), ""]
    lines += ["Languages", *table(("language", "messages"), list(report.languages), width=width), ""]
    if report.hashtags:
        lines += ["Top hashtags", *table(("hashtag", "messages"), [("#" + t, n) for t, n in report.hashtags],
                                         wrap=(0,), width=width), ""]
    if report.sources:
        lines += ["Where what it carried comes from", *table(("origin", "forwards", "copies"), [
            (s.name, s.forwards, s.copies) for s in report.sources], wrap=(0,), width=width), ""]
    return "\n".join(lines)


def channel_json(report: ChannelReport) -> str:
    """One channel's activity as one JSON object (the report's dataclass tree)."""
    return _json(report)


def channel_csv(report: ChannelReport) -> str:
    """One channel's messages per day by relation as CSV (the other sections are in text and JSON)."""
    return _csv(("day", "originals", "forwards", "copies"),
                ((d.day, d.originals, d.forwards, d.copies) for d in report.days))


COMMANDS = (
    Command("report", "reports over the archive: amplification, channel, query", _report, _report_arguments,
            "Reports over the archive. `amplification`: per origin channel, which of its posts other "
            "channels carried (forward or copy), how fast, and which they dropped. `query`: a search's "
            "matches per day per channel. `channel`: one channel's activity."),
)
