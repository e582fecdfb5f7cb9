"""`chanwatch show POST`: the whole record of one post (`storage.post_record`) on the terminal — origin,
every sighting with its delay, versions as word diffs, deletion intervals, engagement sparklines, files —
or as one JSON object (`--json`). Reads only: the archive is opened read-only, as for search.

    chanwatch show https://t.me/rusembc/500        # the post that message carried, all its sightings
    chanwatch show 1234 --json | jq '.sightings[].readings'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap

from bot.cli.common import EXIT_OK, CliError, Command, archive_path, open_archive
from bot.cli.table import DEFAULT_WIDTH, output_width, table
from bot.formatting import channel_label
from bot.post_text import deletion_text, file_text, sighting_name, version_head, views_curve, when
from storage.post_record import FORMS, PostRecord, PostRefError, Sighting, find_post, post_record, record_json
from storage.sparkline import delay_text
from storage.word_diff import terminal_diff, word_diff

DIFF_CONTEXT = 60  # characters of unchanged text kept on each side of a change


def _wrapped(text: str, indent: str) -> list[str]:
    """`text` wrapped at 100 columns under `indent`, its own line breaks kept."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width=100, initial_indent=indent, subsequent_indent=indent,
                               replace_whitespace=False, drop_whitespace=True) or [indent.rstrip()]
    return lines


def _sightings_table(record: PostRecord, width: int) -> list[str]:
    """One row per sighting: where, as what, when, how late after the origin, views, deleted."""
    return table(("CHANNEL/MESSAGE", "RELATION", "DATE (UTC)", "DELAY", "VIEWS", ""), [
        (sighting_name(s), s.relation, when(s.date)[:16], delay_text(s.delay_s),
         f"{s.views:,}" if s.views is not None else "-", "deleted" if s.deleted_at else "")
        for s in record.sightings], left=(0, 1, 2, 3, 5), wrap=(0,), width=width)


def _sighting(s: Sighting, post_text: str, colour: bool) -> list[str]:
    lines = [f"{sighting_name(s)} · {s.relation} · {s.url}",
             f"  first seen {when(s.first_seen)}" + (f", last seen present {when(s.last_seen)}"
                                                     if s.last_seen else "")]
    if len(s.versions) == 1:
        if s.versions[0].text != post_text:
            lines += ["  its text (not the one shown above):", *_wrapped(s.versions[0].text, "    ")]
        if not s.versions[0].has_raw:
            lines.append("  no raw JSON kept")
    else:
        lines.append(f"  {len(s.versions)} versions:")
        for index, v in enumerate(s.versions):
            before = s.versions[index - 1] if index else None
            lines.append("    " + version_head(index + 1, v, s, before))
            shown = v.text if before is None else terminal_diff(word_diff(before.text, v.text), colour=colour,
                                                                context=DIFF_CONTEXT)
            lines += _wrapped(shown, "      ")
    gone = deletion_text(s)
    if gone:
        lines.append("  " + gone)
    lines.append("  engagement: " + views_curve(s))
    return lines


def format_record(record: PostRecord, colour: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """The record for people: origin and text, the sightings table (`width` columns wide), each
    sighting in detail, files."""
    origin = channel_label(record.origin_username, record.origin_title, record.origin_channel_id)
    if record.origin_username and record.origin_title:
        origin += f" ({record.origin_title})"
    lines = [f"post {record.post_id} · first posted by {origin} · {when(record.date)}"]
    if record.origin_url:
        lines.append(record.origin_url)
    if record.text:
        lines += _wrapped(record.text, "  ")
    elif record.media_kind:
        lines.append(f"  ({record.media_kind}, no text)")
    count = len(record.sightings)
    lines += ["", f"{count} sighting{'s' if count != 1 else ''}:", *_sightings_table(record, width)]
    for s in record.sightings:
        lines += ["", *_sighting(s, record.text, colour)]
    if record.files:
        lines += ["", f"files ({len(record.files)}):", *("  " + file_text(f) for f in record.files)]
    return "\n".join(lines)


def _colour() -> bool:
    """Colours on a terminal, unless NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _show(args: argparse.Namespace) -> int:
    with open_archive(archive_path(args), readonly=True) as conn:
        try:
            post_id = find_post(conn, args.post)
        except PostRefError as exc:
            raise CliError(f"show: {exc}") from None
        record = post_record(conn, post_id)
    if record is None:  # merged away between the two reads (a writer runs beside us)
        raise CliError(f"show: post {post_id} is gone (merged into another); try the link instead")
    if args.json:
        print(json.dumps(record_json(record), ensure_ascii=False))
    else:
        print(format_record(record, _colour(), output_width()))
    return EXIT_OK


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("post", metavar="POST", help="; ".join(FORMS))
    parser.add_argument("--json", action="store_true", help="the whole record as one JSON object")


COMMANDS = (
    Command("show", "the whole record of one post: sightings, versions, deletions, engagement", _show,
            _show_arguments,
            "Show one post: its origin, every sighting with its delay after the origin, each sighting's "
            "versions as word diffs, when it was deleted (between the last time seen present and the first "
            "time seen missing), its views over time as a sparkline, and its files. POST is "
            + "; ".join(FORMS) + " (any sighting of the post)."),
)
