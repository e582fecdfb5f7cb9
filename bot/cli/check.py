"""`chanwatch check`: is the archive file sound? SQLite's integrity check, foreign keys, text that
is not UTF-8 and the search index (`storage.integrity.find_problems`); exit 0 when sound, else the
problems, how to recover (`storage.integrity.how_to_recover`) and exit 2.

It opens the archive read-only and as it is (an older schema is reported, not upgraded), so it works
on a read-only or damaged archive and never changes it.
"""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import EXIT_OK, EXIT_USAGE, PROG, Command, archive_path, open_archive
from storage.database import SCHEMA_VERSION, StorageError, schema_version
from storage.integrity import Problem, find_problems, how_to_recover
from storage.location import ServerUrl


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="SQLite's quick_check instead of integrity_check: it skips comparing every "
                             "index with its table, which is slow on a big archive")


def _check(args: argparse.Namespace) -> int:
    path = archive_path(args)
    version: int | None = None
    try:
        with open_archive(path, readonly=True, any_version=True) as conn:
            version = schema_version(conn)
            problems = find_problems(conn, quick=args.quick)
    except StorageError as exc:
        if exc.kind != "corrupt":
            raise
        problems = [Problem("integrity", "SQLite cannot read the archive's schema: the file is damaged")]
    if version is not None and version < SCHEMA_VERSION:
        print(f"schema version {version}: the next command that can write to it upgrades it to "
              f"{SCHEMA_VERSION}")
    if not problems and isinstance(path, ServerUrl):
        print(f"ok: {path} (search index; PostgreSQL itself keeps integrity, foreign keys and encoding)")
        return EXIT_OK
    if not problems:
        checked = "quick integrity check" if args.quick else "integrity"
        print(f"ok: {path} ({checked}, foreign keys, text encoding, search index)")
        return EXIT_OK
    for problem in problems:
        print(f"{problem.check}: {problem.detail}")
    for line in how_to_recover(path, problems, version):
        print(line)
    print(f"{PROG}: the archive at {path} is not sound: what is wrong and how to recover is listed above",
          file=sys.stderr)
    return EXIT_USAGE


COMMANDS = (
    Command("check", "check the archive file: integrity, foreign keys, text encoding, search index", _check,
            _check_arguments,
            "Check the archive without changing it: SQLite's integrity_check (or --quick), foreign keys, "
            "text that is not UTF-8, and whether the search index covers every post. Exit status 0 when "
            "it is sound, 2 with the problems and how to recover when not."),
)
