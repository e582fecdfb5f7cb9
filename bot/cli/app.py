"""The `chanwatch` parser and dispatcher: global options, one sub-parser per command, exit statuses.

The commands come from an explicit list of modules, each exposing `COMMANDS` (a tuple of
`bot.cli.common.Command`); this module imports them, they never import it. Mistakes the user can
fix (`common.USER_ERRORS`) are printed as one line on stderr with exit status 2 — never a traceback;
so is any SQLite error a command lets through (`storage.faults.explain` says what it means for
the archive), and output that cannot be written (a full disk; a closed pipe is quietly exit 0).
Standard output is flushed before `main` returns, so the interpreter never meets a failed write at
exit ("Exception ignored").
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import inspect
import os
import sqlite3
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from bot.cli import (
    backfill,
    channels,
    check,
    daemon,
    demo,
    exchange,
    fetch,
    media,
    migrate_db,
    report,
    rules,
    search,
    serve,
    show,
    stats,
    status,
)
from bot.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    USER_ERRORS,
    Command,
    add_command_parser,
    add_global_options,
    archive_path,
    error_text,
    lock_wait_s,
)
from storage.database import explain

COMMAND_MODULES = (exchange, search, show, stats, status, report, serve, check, media, daemon, channels,
                   rules, backfill, fetch, demo, migrate_db)
"""Every command group, in the order `chanwatch --help` lists them."""

COMMANDS: tuple[Command, ...] = tuple(cmd for module in COMMAND_MODULES for cmd in module.COMMANDS)


class Parser(argparse.ArgumentParser):
    """argparse with no clustered short options: a single-dash word longer than two characters
    (`-visa`, `'-hamas canada'`) is an argument — a query — never `-h` followed by text.

    chanwatch has no short option but `-h`, so nothing is lost; without this, `search '-hamas canada'`
    printed the help. Overrides argparse's private `_parse_optional` (None means "a positional"; the
    same in Python 3.11 through 3.13); tests/bot/test_cli.py checks the behaviour.
    """

    def _parse_optional(self, arg_string: str) -> Any:
        if (len(arg_string) > 2 and arg_string[0] == "-" and arg_string[1] != "-"
                and arg_string not in self._option_string_actions):
            return None
        return super()._parse_optional(arg_string)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The full parser: global options and one sub-parser per command."""
    parser = Parser(
        prog=PROG,
        description="Archive public Telegram channels with forward provenance; search and export them.",
    )
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for cmd in commands:
        child = add_command_parser(sub, cmd.name, help=cmd.help, description=cmd.description or cmd.help)
        if cmd.add_arguments is not None:
            cmd.add_arguments(child)
        child.set_defaults(handler=cmd.handler)
    return parser


def main(argv: Sequence[str] | None = None, commands: Sequence[Command] = COMMANDS) -> int:
    """Run one command; returns the exit status (the console script passes it to `sys.exit`)."""
    parser = build_parser(commands)
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            _take_dashed_query(parser, args, extras)
    except SystemExit as exc:  # --help, or argparse's own usage error (already printed)
        return _flushed(exc.code if isinstance(exc.code, int) else EXIT_USAGE)
    except OSError as exc:  # `chanwatch --help > /dev/full`
        if not _output_failed(exc):
            raise
        return _output_status(exc)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    token = lock_wait_s.set(args.lock_wait) if args.lock_wait is not None else None
    try:
        return _flushed(_run(args))
    finally:
        if token is not None:
            lock_wait_s.reset(token)


def _run(args: argparse.Namespace) -> int:
    """Run the command's handler; every failure the user can meet is one line on stderr."""
    try:
        result = args.handler(args)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return EXIT_OK if result is None else int(result)
    except USER_ERRORS as exc:
        print(error_text(exc, getattr(args, "query", None)), file=sys.stderr)
        return getattr(exc, "status", EXIT_USAGE)
    except sqlite3.Error as exc:  # one the command did not expect: say what it means for the archive
        print(error_text(explain(exc, _archive(args))), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if not _output_failed(exc):
            raise
        return _output_status(exc)


OUTPUT_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Errors of writing the output (standard output, or an export's --out file)."""


def _output_failed(exc: OSError) -> bool:
    return isinstance(exc, BrokenPipeError) or exc.errno in OUTPUT_ERRNOS


def _output_status(exc: OSError) -> int:
    """A closed pipe (`chanwatch export | head`: the reader left) is not an error; anything else
    that stops the output is one line and exit 2. Either way stdout goes quiet for the exit."""
    _silence_stdout()
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK
    print(f"{PROG}: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
    return EXIT_USAGE


def _flushed(status: int) -> int:
    """Flush stdout now, so that a failed write is reported here rather than by the interpreter."""
    if sys.stdout is None:
        return status
    try:
        sys.stdout.flush()
    except OSError as exc:
        if not _output_failed(exc):
            raise
        failed = _output_status(exc)
        return status if failed == EXIT_OK else failed
    return status


def _archive(args: argparse.Namespace) -> Path | str:
    """The archive a command worked on, for an error message (any path will do if it cannot be told)."""
    try:
        return archive_path(args)
    except Exception:  # noqa: BLE001 - only a name for the message
        return getattr(args, "db", None) or "the archive"


def _take_dashed_query(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]) -> None:
    """A query starting with - (`search -visa`) reaches argparse as an unknown option: a command whose
    QUERY was not given takes one such argument as its query, so the query language's own error (with
    its example) answers it. Anything else left over is the usage error `parse_args` would give."""
    dashed = len(extras) == 1 and extras[0].startswith("-") and not extras[0].startswith("--")
    if dashed and getattr(args, "query", "") is None:
        args.query = extras[0]
        return
    quote = hasattr(args, "query") and not any(e.startswith("--") for e in extras)
    hint = "; put a query of several words in quotes, e.g. 'canada -visa'" if quote else ""
    parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


async def _await(awaitable: Awaitable[int | None]) -> int | None:
    return await awaitable


def _silence_stdout() -> None:
    """After a failed write, point stdout at devnull so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
