"""`chanwatch media status`, `media verify` and `media fetch`: the download queue at a glance, the media
store checked file by file against the hashes it is named by (evidence integrity), and one post's (or
one file's) skipped or failed files downloaded now, whatever the policy.

`status` and `verify` only read: the archive opens read-only and the store is never written, so they
run beside the daemon. `fetch` connects the reading account, like `backfill`. The store is
CHANWATCH_MEDIA_DIR, else `media/` beside the archive (`bot.config.media_dir_of`).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TextIO

from bot.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    Command,
    add_command_parser,
    archive_path,
    environment,
    int_at_least,
    open_archive,
    plural,
    settings_from_args,
)
from bot.config import ConfigError, Settings, media_dir_of
from bot.connect import Prepare, connect_user
from bot.media import Downloader, MediaPolicy
from bot.telegram import FloodPolicy, redact
from storage.database import Database
from storage.media_queue import files_by_id, files_of_post, media_status, requeue
from storage.media_store import MediaStore, verify
from storage.records import PostFile

FETCH_MAX_WAIT = 300.0  # a fetch may sit out flood waits up to 5 minutes, as a backfill does


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
    fetch = add_command_parser(sub, "fetch", help="download a post's skipped or failed files now, "
                               "whatever CHANWATCH_MEDIA and CHANWATCH_MEDIA_MAX_MB say")
    which = fetch.add_mutually_exclusive_group(required=True)
    which.add_argument("--post", type=int_at_least(1), metavar="N", help="the post's files (its post_id)")
    which.add_argument("--file", type=int, metavar="FILE_ID", help="one file (its Telegram file id)")
    for action in sub.choices.values():
        action.add_argument("--media-dir", metavar="PATH", help="the media store (default: "
                            "$CHANWATCH_MEDIA_DIR, else media/ beside the archive)")


def _media(args: argparse.Namespace) -> int | Awaitable[int]:
    if args.action == "fetch":
        settings = settings_from_args(args)
        root = Path(args.media_dir).expanduser() if args.media_dir is not None else settings.media_dir
        return fetch_files(settings, root, post=args.post, file_id=args.file)
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


def _file_line(file: PostFile, reason: str | None) -> str:
    head = f"file {file.file_id} ({file.kind})"
    if file.state == "done":
        size = f" ({file.size:,} bytes)" if file.size is not None else ""
        return f"{head}: stored {file.path}{size}"
    return f"{head}: {file.state}" + (f": {reason}" if reason else "")


async def fetch_files(settings: Settings, root: Path, *, post: int | None = None, file_id: int | None = None,
                      prepare: Prepare | None = None, out: TextIO | None = None) -> int:
    """Queue the post's (or the one file's) skipped and failed files again and download them now through
    the reading account, ignoring the policy; one line per file, exit 2 unless every one is stored."""
    out = out or sys.stdout
    path = settings.db_path
    if isinstance(path, Path) and str(path) != ":memory:" and not path.exists():
        raise CliError(f"no archive at {settings.db_path}; give --db, or run the daemon first")
    db = await Database.open(settings.db_path)
    try:
        files = await (db.run(files_of_post, post) if post is not None else db.run(files_by_id, [file_id]))
        if not files:
            what = f"post {post} carries no files" if post is not None else f"no file {file_id} is queued"
            raise CliError(f"media fetch: {what}; `chanwatch search --json` lists each post's files")
        ids = [f.file_id for f in files if f.state != "done"]
        reasons: dict[int, str] = {}
        stopped: str | None = None
        if ids:
            secrets = settings.secrets()
            client = await connect_user(settings, prepare=prepare)
            try:
                await db.transaction(requeue, ids)
                downloader = Downloader(db, client, MediaStore(root), MediaPolicy(kinds=None, max_bytes=None),
                                        flood=FloodPolicy(max_wait=FETCH_MAX_WAIT))
                report = await downloader.run_once(limit=len(ids), file_ids=ids)
            finally:
                await client.disconnect()
            reasons = {k: redact(v, secrets) for k, v in report.failures.items()}
            stopped = redact(report.stopped, secrets) if report.stopped else None
        after = await db.run(files_by_id, [f.file_id for f in files])
    finally:
        await db.close()
    for file in after:
        print(_file_line(file, reasons.get(file.file_id)), file=out)
    if stopped is not None:
        print(f"{PROG}: media fetch stopped: {stopped}; run it again later", file=sys.stderr)
    return EXIT_OK if all(f.state == "done" for f in after) else EXIT_USAGE


COMMANDS = (
    Command("media", "downloaded media: queue status, verify stored files, fetch a post's", _media,
            _media_arguments,
            "The daemon downloads the media of archived posts (CHANWATCH_MEDIA, CHANWATCH_MEDIA_MAX_MB) "
            "into a store named by SHA-256. `status` counts files by state; `verify` re-hashes every "
            "stored file; `fetch` downloads a post's skipped or failed files now."),
)
