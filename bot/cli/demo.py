"""`chanwatch demo [--speed N|max] [--db PATH]`: the daemon on a simulated day, offline, no credentials.

The archive: without `--db` the demo writes to a temporary file that is removed at the end (it never
touches your real archive: `$CHANWATCH_DB`, CHANWATCH_DB in .env, or ./chanwatch.db).
With `--db PATH` (a path that does not exist yet) the archive is kept for `chanwatch --db PATH search`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.cli.common import CliError, Command
from bot.config import sqlite_file
from bot.demo.runner import DEFAULT_SPEED, run_demo


def parse_speed(text: str) -> float | None:
    """`max` -> None (as fast as possible); otherwise a positive number of simulated seconds per second."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'max': {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number or 'max': {text!r}")
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speed", type=parse_speed, default=DEFAULT_SPEED, metavar="N|max",
                        help=f"simulated seconds per real second (default {DEFAULT_SPEED:g}: the day in "
                             "about a minute); 'max' runs as fast as possible")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="bold text as in Telegram (default: when stdout is a terminal)")
    parser.add_argument("--verbose", action="store_true", help="also show the daemon's log lines")
    # The global --db is hidden on every command's parser; the demo's description sends the user to
    # it, so the demo shows its own (it replaces the hidden one; `chanwatch --db PATH demo` still works).
    archive = parser.add_argument_group("archive", conflict_handler="resolve")
    archive.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS,
                         help="keep the demo's archive in PATH, a file that does not exist yet (default: a "
                              "temporary archive, removed at the end; your own archive is never used)")


def demo_archive(args: argparse.Namespace) -> Path | None:
    """Where to keep the demo archive: None (temporary) unless --db names a new file.

    Only an explicit --db counts: $CHANWATCH_DB, CHANWATCH_DB in .env and ./chanwatch.db are the
    user's real archive, and the demo never writes there.
    """
    given = getattr(args, "db", None)
    if not given or given == ":memory:":
        return None
    path = sqlite_file(given, "--db", "the demo")
    if path.exists():
        raise CliError(f"demo: {path} already exists; give a new path for the demo archive "
                       "(the demo builds a fresh one)")
    if not path.parent.is_dir():
        raise CliError(f"demo: cannot create {path}: {path.parent} is not a directory")
    return path


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None and os.environ.get("TERM") != "dumb"


@contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    """The demo's output is the point: only warnings from our code reach stderr unless --verbose
    (the scheduler's and Telethon's chatter stays out). Logger levels are restored afterwards."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    noisy = [logging.getLogger(name) for name in ("apscheduler", "telethon")]
    levels = [logger.level for logger in noisy]
    if not verbose:
        for logger in noisy:
            logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(noisy, levels, strict=True):
            logger.setLevel(level)


async def _demo(args: argparse.Namespace) -> int:
    archive = demo_archive(args)
    with _quiet_logs(args.verbose):
        await run_demo(speed=args.speed, db_path=archive, out=sys.stdout, color=_use_color(args.color))
    return 0


COMMANDS = (
    Command("demo", "run the daemon offline on a simulated day of sample channels (no Telegram needed)",
            _demo, _arguments,
            "Run the real daemon (poller, rules, alerts, bot commands) against an in-process simulated "
            "Telegram: a fictional ministry and three embassies post, forward, edit and delete over a day "
            "compressed into about a minute; a simulated subscriber gets alerts and types /search. "
            "Without --db the archive is temporary; with --db PATH (a new file) it is kept."),
)
