"""`chanwatch stats`: what the archive holds and how much deduplication saved (`storage.stats`)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from bot.cli.common import EXIT_OK, Command, archive_path, environment, open_archive
from bot.command_text import sources_line
from bot.config import default_source_from
from storage.channels import channel_listing
from storage.stats import ArchiveStats, archive_stats


def stats_json(stats: ArchiveStats) -> dict[str, int]:
    """The counts under the names `stats --json` has always used, and "edited posts" (what
    `is:edited` finds; new beside the two counts of kept versions)."""
    return {
        "channels": stats.channels,
        "watched channels": stats.watched,
        "posts": stats.posts,
        "messages (sightings)": stats.sightings,
        "forwards": stats.forwards,
        "copies": stats.copies,
        "duplicates avoided": stats.duplicates_avoided,
        "edited posts": stats.edited_posts,
        "edits (versions kept)": stats.versions,
        "edited messages": stats.edited_messages,
        "deletions": stats.deletions,
        "FTS rows": stats.fts_rows,
        "database bytes": stats.database_bytes,
    }


LABELS = {
    "edited posts": "posts marked edited (is:edited)",
    "edits (versions kept)": "earlier versions kept",
    "edited messages": "messages with earlier versions kept",
    "database bytes": "database size",
}
"""How the text output names a JSON key where the key alone would not say what is counted: a post is
marked edited when Telegram shows it edited (as Desktop exports do, with no earlier text) or when the
archive saw its text change; only the changes the archive saw keep an earlier version."""


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _stats_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object")


def _stats(args: argparse.Namespace) -> int:
    path = archive_path(args)
    with open_archive(path, readonly=True) as conn:
        stats = stats_json(archive_stats(conn, datetime.now(UTC)))
        listing = channel_listing(conn)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
        return EXIT_OK
    width = max(len(LABELS.get(k, k)) for k in stats)
    print(f"archive: {path}")
    for name, value in stats.items():
        shown = _human_bytes(value) if name == "database bytes" else f"{value:,}"
        print(f"  {LABELS.get(name, name):<{width}}  {shown}")
    sources = sources_line([c.source for c in listing], default_source_from(environment(args)))
    if sources:  # each channel's own source, else CHANWATCH_SOURCE's (auto: API with a user session)
        print(f"  {'watched channels read by':<{width}}  {sources}")
    return EXIT_OK


COMMANDS = (
    Command("stats", "counts: channels, posts, sightings, forwards, edits, deletions, index, size", _stats,
            _stats_arguments),
)
