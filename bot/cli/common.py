"""What every `chanwatch` sub-command shares: the `Command` record, exit statuses, the user-error
type and how it reads on stderr, opening the archive, and small argparse types.

Nothing here imports a command module, and every command module imports only this one from
`bot.cli`, so the CLI's import graph has no cycle (`tests/test_import_graph.py` checks it).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from bot.config import ConfigError, Settings, load_settings
from bot.connect import ConnectError
from storage import search
from storage.database import StorageError, connect_sync
from storage.exchange import ExchangeError
from storage.query import QueryError

PROG = "chanwatch"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
QUERY_EXAMPLE = "example: chanwatch search 'canada sanctions -visa since:2025-12-01'"

Handler = Callable[[argparse.Namespace], "int | None | Awaitable[int | None]"]


class CliError(Exception):
    """A mistake the user can fix (exit status 2), or a failure that may pass (`status` 1);
    printed as one line."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


USER_ERRORS: tuple[type[BaseException], ...] = (
    CliError, ConfigError, ConnectError, ExchangeError, StorageError, QueryError)
"""Errors that are the user's to fix: one line on stderr, exit 2 (or their `status`), never a traceback."""


@dataclass(frozen=True)
class Command:
    """One sub-command: its name, one-line help, how to add its arguments, and what it does.

    A handler returns an exit status (None means 0); an `async def` handler is run with asyncio.
    """

    name: str
    help: str
    handler: Handler
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None


def default_db() -> str:
    """`$CHANWATCH_DB`, else `./chanwatch.db`."""
    return os.environ.get("CHANWATCH_DB") or "chanwatch.db"


def error_text(exc: BaseException, query: str | None = None) -> str:
    """How an error reads on stderr; a query error points at the culprit and shows a query that works."""
    text = str(exc).rstrip() or type(exc).__name__
    if isinstance(exc, QueryError):
        lines = [f"{PROG}: bad query: {text}"]
        position = exc.position
        if query and "\n" not in query and isinstance(position, int) and 0 <= position <= len(query):
            lines += [f"  {query}", "  " + " " * position + "^"]
        return "\n".join([*lines, QUERY_EXAMPLE])
    return f"{PROG}: {text}"


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from --env-file (else ./.env) and the environment; an explicit --db wins."""
    try:
        settings = load_settings(getattr(args, "env_file", None))
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if getattr(args, "db", None) and str(args.db) != default_db():
        settings = replace(settings, db_path=Path(args.db).expanduser())
    return settings


def env_file_argument(parser: argparse.ArgumentParser) -> None:
    """`--env-file PATH` for the commands that read the whole configuration."""
    parser.add_argument("--env-file", metavar="PATH",
                        help="read settings from this file instead of ./.env (the environment still wins)")


@contextmanager
def open_archive(args: argparse.Namespace, *, must_exist: bool = True) -> Iterator[sqlite3.Connection]:
    """The archive named by `--db`, migrated; a read-only command refuses a path with no archive."""
    path = str(args.db)
    if must_exist and path != ":memory:" and not Path(path).expanduser().exists():
        raise CliError(f"no archive at {path}; create one with "
                       f"`chanwatch --db {path} import result.json` (or `import --sample`)")
    if Path(path).expanduser().is_dir():
        raise CliError(f"cannot open the archive at {path}: it is a directory")
    conn = connect_sync(Path(path).expanduser() if path != ":memory:" else path)
    try:
        search.register_functions(conn)
        yield conn
    finally:
        conn.close()


# --- argparse types -------------------------------------------------------------------------------


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than `minimum`, with a one-line error otherwise."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more: {value}")
        return value

    return convert


def day(text: str) -> date:
    """An argparse type: a day as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def chat_id(text: str) -> int:
    """An argparse type: a numeric Telegram chat id (negative for groups and channels)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a numeric chat id: {text!r}") from None
