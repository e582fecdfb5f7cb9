"""`chanwatch migrate-db SOURCE TARGET`: copy a whole archive to another one, SQLite to PostgreSQL
or back (also SQLite to SQLite, PostgreSQL to PostgreSQL), with a progress bar; the copy is
`storage.migrate_db`. Stopped (Ctrl-C, killed, a lost connection), the same command continues where
it stopped. SOURCE and TARGET are read here (not through `--db`): a path, `sqlite:///…` or
`postgresql://…` (`storage.location.parse_location`); only redacted URLs reach the output.

    chanwatch migrate-db chanwatch.db postgresql://chanwatch@db.example/chanwatch
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import ExitStack
from typing import Any

from bot.cli.common import EXIT_INTERRUPTED, PROG, CliError, Command, int_at_least, plural
from bot.cli.progress import progress_bars
from storage.database import StorageError, connect_sync
from storage.location import LocationError, ServerUrl, SqlitePath, parse_location
from storage.migrate_db import BATCH_ROWS, copy_archive

DESCRIPTION = (
    "Copy every row of the archive SOURCE into the empty archive TARGET: SQLite to PostgreSQL or back "
    "(also SQLite to SQLite, PostgreSQL to PostgreSQL). Each is a file path, sqlite:///archive.db, or "
    "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE. Ids, dates, texts and every table come across "
    "as they are; the search index is rebuilt on the target. Both archives are first brought to this "
    "chanwatch's schema (an older SOURCE is upgraded, as any command does); a new TARGET file or "
    "an empty PostgreSQL database is created as an archive. Stop `chanwatch run` on SOURCE while it "
    "copies. Interrupted (Ctrl-C, a lost connection), the same command continues where it stopped. A "
    "TARGET that holds an archive already is refused: the copy never merges two archives."
)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE",
                        help="the archive to copy: a path, sqlite:///…, postgresql://…")
    parser.add_argument("target", metavar="TARGET",
                        help="where to copy it: a new file, or an empty PostgreSQL database (postgresql://…)")
    parser.add_argument("--batch-rows", metavar="N", type=int_at_least(1), default=BATCH_ROWS,
                        help=f"rows copied per transaction (default {BATCH_ROWS})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _location(text: str, which: str) -> tuple[SqlitePath | ServerUrl, str]:
    """Where `text` (SOURCE or TARGET) is, and how messages name it (a server URL redacted)."""
    try:
        location = parse_location(text)
    except LocationError as exc:
        raise CliError(f"{which}: {exc}") from None
    shown = location.redacted if isinstance(location, ServerUrl) else str(location.path)
    if isinstance(location, SqlitePath) and location.path.is_dir():
        raise CliError(f"{which} {shown} is a directory; give an archive file")
    return location, shown


def _same(source: SqlitePath | ServerUrl, target: SqlitePath | ServerUrl) -> bool:
    """The two locations name one archive as written (the copy also compares the archives opened)."""
    if isinstance(source, SqlitePath) and isinstance(target, SqlitePath):
        return source.path.resolve() == target.path.resolve()
    return isinstance(source, ServerUrl) and isinstance(target, ServerUrl) and source.url == target.url


def _migrate(args: argparse.Namespace) -> int | None:
    source, source_shown = _location(args.source, "SOURCE")
    target, target_shown = _location(args.target, "TARGET")
    if _same(source, target):
        raise CliError(f"SOURCE and TARGET are the same archive ({source_shown}): give another TARGET")
    if isinstance(source, SqlitePath) and not source.path.is_file():
        raise CliError(f"no archive at {source_shown} (SOURCE); give the path of an existing archive")
    with ExitStack() as stack:
        ends: list[Any] = []
        for location, which, shown in ((source, "SOURCE", source_shown), (target, "TARGET", target_shown)):
            try:
                conn = connect_sync(location)
            except sqlite3.Error as exc:  # raised while migrating, not explained
                raise CliError(f"cannot open {which} {shown}: {str(exc).strip()}") from None
            except StorageError as exc:  # explained: it names the archive already
                raise CliError(f"cannot open {which}: {str(exc).strip()}") from None
            stack.callback(conn.close)
            ends.append(conn)
        try:
            with progress_bars(not args.no_progress, unit="rows") as progress:
                report = copy_archive(ends[0], ends[1], names=(source_shown, target_shown),
                                      batch_rows=args.batch_rows, progress=progress)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; the rows copied so far are kept in {target_shown}: run the same "
                  "migrate-db again to continue", file=sys.stderr)
            return EXIT_INTERRUPTED
    tables = len(report.rows)
    resumed = f" ({report.resumed_rows:,} of them by an earlier run)" if report.resumed_rows else ""
    print(f"copied {report.total:,} {plural(report.total, 'row')} of {tables} {plural(tables, 'table')} "
          f"from {source_shown} to {target_shown}{resumed}; schema version {report.schema_version}")
    return None


COMMANDS = (
    Command("migrate-db", "copy a whole archive between SQLite and PostgreSQL (resumable)", _migrate,
            _arguments, DESCRIPTION),
)
