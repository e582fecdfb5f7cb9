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
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from bot.config import ConfigError, Settings, archive_file, db_path_from, load_settings, read_env
from bot.connect import ConnectError
from storage import search
from storage.database import BUSY_TIMEOUT_MS, LockWait, StorageError, connect_readonly, connect_sync
from storage.exchange import ExchangeError
from storage.location import ServerUrl
from storage.query import QueryError

PROG = "chanwatch"
EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
LOCK_WAIT_S = 120.0
"""How long a command that writes waits for another process writing to the archive (`--lock-wait`)."""
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
    """`--db`, `--env-file` and `--lock-wait`: on the main parser (default None), and on each
    sub-command's parser with `suppress` (no default, hidden), so each may come before or after the
    command."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", metavar="PATH", default=default,
                        help=argparse.SUPPRESS if suppress else
                        "the archive (default: $CHANWATCH_DB, else CHANWATCH_DB in the env file, "
                        "else ./chanwatch.db)")
    parser.add_argument("--env-file", metavar="PATH", default=default,
                        help=argparse.SUPPRESS if suppress else
                        "read settings from this file instead of ./.env (the environment still wins)")
    parser.add_argument("--lock-wait", metavar="SECONDS", type=seconds, default=default,
                        help=argparse.SUPPRESS if suppress else
                        f"how long a command that writes to the archive waits while another process "
                        f"writes to it (default {LOCK_WAIT_S:.0f})")


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


def archive_path(args: argparse.Namespace) -> Path | ServerUrl:
    """Where the archive is, for every command: --db, else $CHANWATCH_DB, else CHANWATCH_DB in
    --env-file (or ./.env), else ./chanwatch.db; an SQLite file's path or a PostgreSQL server's URL."""
    given = getattr(args, "db", None)
    if given is not None:
        return archive_file(given, "--db")
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


lock_wait_s: ContextVar[float] = ContextVar("lock_wait_s", default=LOCK_WAIT_S)
"""This run's `--lock-wait` (set by `bot.cli.app.main`), read by `open_archive`."""


def _lock_notice(path: Path) -> Callable[[], None]:
    def notice() -> None:
        print(f"{PROG}: waiting for another process writing to {path} (an import or `chanwatch run`?) "
              "— Ctrl-C to give up", file=sys.stderr, flush=True)
    return notice


def _for_reading(path: Path | ServerUrl, busy_timeout_ms: int, any_version: bool) -> sqlite3.Connection:
    """A read-only connection. An archive of an older schema is upgraded first when it can be
    written (as every command always did); when it cannot, the refusal says what to do."""
    try:
        return connect_readonly(path, busy_timeout_ms=busy_timeout_ms, any_version=any_version)
    except StorageError as exc:
        if exc.kind != "outdated":
            raise
        outdated = exc
    try:
        connect_sync(path, busy_timeout_ms=busy_timeout_ms).close()
    except StorageError as exc:
        if exc.kind in ("readonly", "cantopen"):
            raise outdated from exc
        raise
    return connect_readonly(path, busy_timeout_ms=busy_timeout_ms)


def _for_writing(path: Path, busy_timeout_ms: int, wait_s: float) -> sqlite3.Connection:
    """A migrated connection whose transactions wait up to `wait_s` for another writer, saying so
    on stderr after the first wait. Where the archive cannot be written (a read-only file, folder
    or mount) it is opened read-only instead: what only reads still works, and the first write
    fails with SQLite's read-only error (one line through `explain`), changing nothing."""
    try:
        return connect_sync(path, busy_timeout_ms=busy_timeout_ms,
                            lock_wait=LockWait(wait_s, _lock_notice(path)))
    except StorageError as exc:
        if exc.kind not in ("readonly", "cantopen") or not path.is_file():
            raise
        writing = exc
    try:
        return connect_readonly(path, busy_timeout_ms=busy_timeout_ms)
    except StorageError as exc:
        if exc.kind in ("outdated", "readonly", "corrupt", "notadb"):
            raise exc from writing  # says more than the writing open's failure
        raise writing from None


@contextmanager
def open_archive(path: Path | ServerUrl, *, must_exist: bool = True, readonly: bool = False,
                 any_version: bool = False, lock_wait: float | None = None,
                 busy_timeout_ms: int | None = None) -> Iterator[sqlite3.Connection]:
    """The archive at `path` (see `archive_path`); a command that only reads refuses a path with no
    archive and passes `readonly` (SQLite's read-only open: it works on a read-only file, folder or
    mount, and never writes; `any_version` also takes an older schema as it is, for `check`).
    A writing open is migrated, and its transactions wait up to `lock_wait` seconds (default
    `--lock-wait`) for another process's write lock, telling stderr after the first wait, which is
    `busy_timeout_ms` (default: 10 s, or half of `lock_wait` when that is shorter).
    A PostgreSQL archive (a `ServerUrl`) is one connection to the server: read-only (a read-only
    session, which refuses a database with no archive) or migrated, as for a file."""
    conn = _connect(path, must_exist=must_exist, readonly=readonly, any_version=any_version,
                    lock_wait=lock_wait, busy_timeout_ms=busy_timeout_ms)
    try:
        search.register_functions(conn)
        yield conn
    finally:
        conn.close()


def _connect(path: Path | ServerUrl, *, must_exist: bool, readonly: bool, any_version: bool,
             lock_wait: float | None, busy_timeout_ms: int | None) -> sqlite3.Connection:
    """`open_archive`'s connection, before the search functions are registered on it."""
    if isinstance(path, ServerUrl):
        return _for_reading(path, BUSY_TIMEOUT_MS, any_version) if readonly else connect_sync(path)
    memory = str(path) == ":memory:"
    if (must_exist or readonly) and not memory and not path.exists():
        raise CliError(f"no archive at {path}; create one with "
                       f"`chanwatch --db {path} import result.json` (or `import --sample`)")
    if path.is_dir():
        raise CliError(f"cannot open the archive at {path}: it is a directory")
    wait_s = lock_wait_s.get() if lock_wait is None else lock_wait
    busy = busy_timeout_ms if busy_timeout_ms is not None else min(BUSY_TIMEOUT_MS, int(wait_s * 500))
    if memory:
        return connect_sync(":memory:")
    if readonly:
        return _for_reading(path, busy, any_version)
    return _for_writing(path, busy, wait_s)

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


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text}")
    return value


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
