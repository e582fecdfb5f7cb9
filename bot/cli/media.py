"""`chanwatch media status` and `chanwatch media verify`: the download queue at a glance, and the media
store checked file by file against the hashes it is named by (evidence integrity).

Both only read: the archive opens read-only and the store is never written, so they run beside the
daemon. The store is CHANWATCH_MEDIA_DIR, else `media/` beside the archive (`bot.config.media_dir_of`).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from bot.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Command,
    add_command_parser,
    archive_path,
    environment,
    open_archive,
    plural,
)
from bot.config import ConfigError, media_dir_of
from storage.media_queue import media_status
from storage.media_store import verify


def media_dir(args: argparse.Namespace) -> Path:
    """--media-dir, else CHANWATCH_MEDIA_DIR (environment, then --env-file), else beside the archive."""
    if args.media_dir is not None:
        return Path(args.media_dir).expanduser()
    raw = (environment(args).get("CHANWATCH_MEDIA_DIR") or "").strip()
    return media_dir_of(Path(raw).expanduser() if raw else None, archive_path(args))


def _media_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = add_command_parser(sub, "status",
                                help="files by state (queued, done, skipped, failed), bytes stored")
    status.add_argument("--json", action="store_true", help="one JSON object")
    add_command_parser(sub, "verify", help="re-hash every stored file: report missing or altered ones")
    for action in sub.choices.values():
        action.add_argument("--media-dir", metavar="PATH", help="the media store (default: "
                            "$CHANWATCH_MEDIA_DIR, else media/ beside the archive)")


def _media(args: argparse.Namespace) -> int:
    root = media_dir(args)
    with open_archive(archive_path(args), readonly=True) as conn:
        if args.action == "status":
            return _status(conn, root, args.json)
        checked = media_status(conn).stored_files
        if checked and not root.is_dir():
            raise ConfigError("CHANWATCH_MEDIA_DIR", f"no media store at {root}; point --media-dir or "
                              "CHANWATCH_MEDIA_DIR at the folder the daemon downloads into")
        problems = verify(root, conn)
    if not problems:
        print(f"ok: {checked:,} stored {plural(checked, 'file')} in {root} hash to their names")
        return EXIT_OK
    for problem in problems:
        print(f"{problem.problem:<8} {problem.path}")
    print(f"{PROG}: {len(problems):,} of {checked:,} stored {plural(checked, 'file')} missing or altered in "
          f"{root}; restore them from a backup (each file's name is the SHA-256 of its bytes)",
          file=sys.stderr)
    return EXIT_USAGE


def _status(conn: sqlite3.Connection, root: Path, as_json: bool) -> int:
    status = media_status(conn)
    counts = {"queued": status.queued, "done": status.done, "skipped": status.skipped,
              "failed": status.failed, "stored files": status.stored_files,
              "stored bytes": status.stored_bytes}
    if as_json:
        print(json.dumps({"media dir": str(root), **counts}))
        return EXIT_OK
    print(f"media store: {root}")
    for name, value in counts.items():
        print(f"  {name:<13} {value:,}")
    return EXIT_OK


COMMANDS = (
    Command("media", "downloaded media: status of the queue, verify the stored files", _media,
            _media_arguments,
            "The daemon downloads the media of archived posts (CHANWATCH_MEDIA, CHANWATCH_MEDIA_MAX_MB) "
            "into a store named by SHA-256. `status` counts files by state; `verify` re-hashes every "
            "stored file."),
)
