"""`chanwatch stats`: what the archive holds and how much deduplication saved."""

from __future__ import annotations

import argparse
import json
import sqlite3

from bot.cli.common import EXIT_OK, Command, archive_path, open_archive


def archive_stats(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts that show what the archive holds and how much deduplication saved."""

    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0] or 0)

    messages = one("SELECT count(*) FROM messages")
    posts = one("SELECT count(*) FROM posts")
    try:
        fts = one("SELECT count(*) FROM posts_fts_docsize")
    except sqlite3.Error:
        fts = one("SELECT count(*) FROM posts_fts")
    return {
        "channels": one("SELECT count(*) FROM channels"),
        "watched channels": one("SELECT count(*) FROM channels WHERE watched"),
        "posts": posts,
        "messages (sightings)": messages,
        "forwards": one("SELECT count(*) FROM messages WHERE relation = 'forward'"),
        "copies": one("SELECT count(*) FROM messages WHERE relation = 'copy'"),
        "duplicates avoided": messages - posts,
        "edits (versions kept)": one("SELECT count(*) FROM message_versions"),
        "edited messages": one("SELECT count(*) FROM messages WHERE edit_date IS NOT NULL"),
        "deletions": one("SELECT count(*) FROM messages WHERE deleted_at IS NOT NULL"),
        "FTS rows": fts,
        "database bytes": one("PRAGMA page_count") * one("PRAGMA page_size"),
    }


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
    with open_archive(path) as conn:
        stats = archive_stats(conn)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
        return EXIT_OK
    width = max(len(k) for k in stats)
    print(f"archive: {path}")
    for name, value in stats.items():
        shown = _human_bytes(value) if name == "database bytes" else f"{value:,}"
        label = "database size" if name == "database bytes" else name
        print(f"  {label:<{width}}  {shown}")
    return EXIT_OK


COMMANDS = (
    Command("stats", "counts: channels, posts, sightings, forwards, edits, deletions, index, size", _stats,
            _stats_arguments),
)
