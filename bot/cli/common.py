"""What every `chanwatch` sub-command shares: the `Command` record, exit statuses, the user-error
type and how it reads on stderr, the global options and where the archive is, opening it, and
small argparse types.

Configuration is read one way for every command: `--db` wins, then the environment, then
`--env-file` (else ./.env), then the default. Offline commands read only the variables they need
(`archive_path`, `environment`); the commands that talk to Telegram check them all
(`settings_from_args`).

Nothing here imports a command module, and every command module imports only this one from
`bot.cli`, so the CLI's import graph has no cycle (`tests/test_import_graph.py` checks it).
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from bot.config import ConfigError, Settings, db_path_from, load_settings, read_env
from bot.connect import ConnectError
from storage import search
from storage.database import StorageError, connect_sync
from storage.exchange import ExchangeError
from storage.query import QueryError

PROG = "chanwatch"
EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
QUERY_EXAMPLE = "example: chanwatch search 'canada sanctions -visa since:2025-12-01'"

Handler = Callable[[argparse.Namespace], "int | None | Awaitable[int | None]"]


class CliError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    CliError, ConfigError, ConnectError, ExchangeError, StorageError, QueryError)
"""Errors that are the user's to fix: one line on stderr, exit 2, never a traceback (a ConnectError
carries its own status: 1 when Telegram is out of reach)."""


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


def plural(count: int, word: str, *, exact: bool = True) -> str:
    """`word` as it follows `count`: `post` for exactly one, else `posts` (also for "1+")."""
    return word if count == 1 and exact else word + "s"


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """`--db` and `--env-file`: on the main parser (default None), and on each sub-command's parser
    with `suppress` (no default, hidden), so either may come before or after the command."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", metavar="PATH", default=default,
                        help=argparse.SUPPRESS if suppress else
                        "the archive (default: $CHANWATCH_DB, else CHANWATCH_DB in the env file, "
                        "else ./chanwatch.db)")
    parser.add_argument("--env-file", metavar="PATH", default=default,
                        help=argparse.SUPPRESS if suppress else
                        "read settings from this file instead of ./.env (the environment still wins)")


def add_command_parser(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command's (or a sub-command's action's) parser, which also takes the global options,
    so `chanwatch rules add Q --env-file F` reads as `chanwatch --env-file F rules add Q`."""
    parent = argparse.ArgumentParser(add_help=False)
    add_global_options(parent, suppress=True)
    return subparsers.add_parser(name, parents=[parent], **kwargs)


def environment(args: argparse.Namespace) -> dict[str, str | None]:
    """The variables of --env-file (else ./.env) overlaid by the environment, unparsed: an offline
    command parses only the ones it needs, so an unrelated bad setting never stops it."""
    return read_env(getattr(args, "env_file", None))


def archive_path(args: argparse.Namespace) -> Path:
    """Where the archive is, for every command: --db, else $CHANWATCH_DB, else CHANWATCH_DB in
    --env-file (or ./.env), else ./chanwatch.db."""
    given = getattr(args, "db", None)
    if given is not None:
        return Path(given).expanduser()
    return db_path_from(environment(args))


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
    """Every setting, checked (for the commands that talk to Telegram), from --env-file (else
    ./.env) and the environment; the archive is `archive_path`'s, as for every command."""
    return replace(load_settings(getattr(args, "env_file", None)), db_path=archive_path(args))


@contextmanager
def open_archive(path: Path, *, must_exist: bool = True) -> Iterator[sqlite3.Connection]:
    """The archive at `path` (see `archive_path`), migrated; a read-only command refuses a path
    with no archive."""
    memory = str(path) == ":memory:"
    if must_exist and not memory and not path.exists():
        raise CliError(f"no archive at {path}; create one with "
                       f"`chanwatch --db {path} import result.json` (or `import --sample`)")
    if path.is_dir():
        raise CliError(f"cannot open the archive at {path}: it is a directory")
    conn = connect_sync(":memory:" if memory else path)
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
