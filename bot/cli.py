"""The `chanwatch` command line: sub-commands, parsing and printing only; the work is in `storage`.

Sub-commands live in a small registry so other modules can add theirs (run, demo, login, backfill,
channels, rules) without touching this file's dispatch::

    @command("stats", "archive counts", add_arguments=None)
    def _stats(args: argparse.Namespace) -> int: ...        # or `async def`: run with asyncio.run

A handler returns an exit status (None means 0). Mistakes the user can fix (a bad query, a file
that is not an export, an archive that cannot be opened) raise `CliError` or one of the storage
errors; `main` prints them as one line on stderr and exits 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sqlite3
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from bot.formatting import minute
from storage import search
from storage.database import StorageError, connect_sync
from storage.exchange import ExchangeError, export_posts, import_file
from storage.records import Post

PROG = "chanwatch"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
QUERY_EXAMPLE = "example: chanwatch search 'canada sanctions -visa since:2025-12-01'"

Handler = Callable[[argparse.Namespace], "int | None | Awaitable[int | None]"]


class CliError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


@dataclass(frozen=True)
class Command:
    """One sub-command: its name, one-line help, how to add its arguments, and what it does."""

    name: str
    help: str
    handler: Handler
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None


COMMANDS: dict[str, Command] = {}


def register(cmd: Command) -> Command:
    """Add a sub-command to the registry (a later registration of the same name replaces it)."""
    COMMANDS[cmd.name] = cmd
    return cmd


def command(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    description: str | None = None,
) -> Callable[[Handler], Handler]:
    """Decorator form of `register` for a handler function (sync or async)."""

    def decorate(handler: Handler) -> Handler:
        register(Command(name, help, handler, add_arguments, description))
        return handler

    return decorate


def default_db() -> str:
    """`$CHANWATCH_DB`, else `./chanwatch.db`."""
    return os.environ.get("CHANWATCH_DB") or "chanwatch.db"


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options and one sub-parser per registered command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Archive public Telegram channels with forward provenance; search and export them.",
    )
    parser.add_argument("--db", metavar="PATH", default=default_db(),
                        help="the archive (default: $CHANWATCH_DB, else ./chanwatch.db)")
    # `--db` is also accepted after the sub-command; SUPPRESS keeps the global value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for cmd in COMMANDS.values():
        child = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help,
                               parents=[common])
        if cmd.add_arguments is not None:
            cmd.add_arguments(child)
        child.set_defaults(handler=cmd.handler)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix: one line on stderr, exit 2."""
    errors: list[type[BaseException]] = [CliError, ExchangeError, StorageError]
    query_error = _query_error_class()
    if query_error is not None:
        errors.append(query_error)
    return tuple(errors)


def _query_error_class() -> type[BaseException] | None:
    try:
        from storage.query import QueryError
    except ImportError:
        return None
    return QueryError


def _error_text(exc: BaseException, query: str | None = None) -> str:
    """How an error reads on stderr; a query error points at the culprit and shows a query that works."""
    query_error = _query_error_class()
    text = str(exc).rstrip() or type(exc).__name__
    if query_error is not None and isinstance(exc, query_error):
        lines = [f"{PROG}: bad query: {text}"]
        position = getattr(exc, "position", None)
        if query and "\n" not in query and isinstance(position, int) and 0 <= position <= len(query):
            lines += [f"  {query}", "  " + " " * position + "^"]
        return "\n".join([*lines, QUERY_EXAMPLE])
    return f"{PROG}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script passes it to `sys.exit`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        result = args.handler(args)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return EXIT_OK if result is None else int(result)
    except _user_errors() as exc:
        print(_error_text(exc, getattr(args, "query", None)), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `chanwatch export | head`: the reader left; not an error
        _silence_stdout()
        return EXIT_OK


async def _await(awaitable: Awaitable[int | None]) -> int | None:
    return await awaitable


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at devnull so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# --- shared helpers for handlers -------------------------------------------------------------------


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




def _one_line(text: str, width: int) -> str:
    """Collapse whitespace and shorten to `width` characters."""
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …") if text else ""


# --- import ----------------------------------------------------------------------------------------


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="Telegram Desktop export (result.json) or a chanwatch JSONL export")
    parser.add_argument("--sample", action="store_true",
                        help="import the bundled fictional sample (a ministry and an embassy channel)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def sample_files() -> list[str]:
    """Names of the bundled sample exports in `bot/sample/`."""
    folder = resources.files("bot").joinpath("sample")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith("_result.json"))


@command("import", "import Telegram Desktop exports or a chanwatch JSONL export", _import_arguments,
         "Import Telegram Desktop 'Export chat history' JSON files (one channel each) or a JSONL file "
         "written by `chanwatch export`. Importing again changes nothing.")
def _import(args: argparse.Namespace) -> int:
    if not args.paths and not args.sample:
        raise CliError("import: give one or more files to import, or --sample")
    status = EXIT_OK
    with open_archive(args, must_exist=False) as conn, ExitStack() as stack:
        sources: list[tuple[str, Path]] = []
        if args.sample:
            folder = resources.files("bot").joinpath("sample")
            for name in sample_files():
                sources.append((f"sample/{name}", stack.enter_context(resources.as_file(folder / name))))
        sources += [(p, Path(p)) for p in args.paths]
        for shown, path in sources:
            try:
                report = import_file(conn, path, progress=not args.no_progress)
            except ExchangeError as exc:
                print(f"{PROG}: {exc}", file=sys.stderr)
                status = EXIT_USAGE
                continue
            report.path = shown
            print(report.summary())
    return status


# --- export ----------------------------------------------------------------------------------------


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", metavar="QUERY", help="export only the posts this query finds")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl")
    parser.add_argument("--out", metavar="PATH", help="write here instead of standard output")


@command("export", "export posts with provenance and sightings as JSONL or CSV", _export_arguments,
         "Write every canonical post (or those QUERY finds) with its origin and every sighting. "
         "JSONL can be imported back with `chanwatch import`.")
def _export(args: argparse.Namespace) -> int:
    with open_archive(args) as conn:
        if args.out is None:
            export_posts(conn, args.query, args.format, sys.stdout)
            sys.stdout.flush()
            return EXIT_OK
        try:
            out: TextIO = open(args.out, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        with out:
            count = export_posts(conn, args.query, args.format, out)
    print(f"exported {count} posts to {args.out}", file=sys.stderr)
    return EXIT_OK


# --- search ----------------------------------------------------------------------------------------


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


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY",
                        help="e.g. 'canada sanctions', 'санкции OR sanctions', '#RussiaCanada'")
    parser.add_argument("--limit", type=int_at_least(0), default=20, help="posts per page (default 20)")
    parser.add_argument("--offset", type=int_at_least(0), default=0, help="skip this many posts")
    parser.add_argument("--json", action="store_true", help="one JSON object per post per line")
    limit = search.COUNT_LIMIT
    parser.add_argument("--exact", action="store_true",
                        help=f"count every match, and rank all of them for sort:rank (slower past "
                             f"{limit:,} matches, where the total otherwise shows as {limit:,}+)")


def _channel_name(username: str | None, title: str | None, channel_id: int | None) -> str:
    if username:
        return f"@{username}"
    return title or (str(channel_id) if channel_id is not None else "unknown")


def post_json(post: Post) -> dict[str, Any]:
    """A post as one `--json` line: its text, origin and every sighting with a link."""
    return {
        "post_id": post.id,
        "text": post.text,
        "date": post.date,
        "lang": post.lang,
        "media_kind": post.media_kind,
        "edited_at": post.edited_at,
        "snippet": post.snippet,
        "origin": {
            "channel_id": post.origin_channel_id, "username": post.origin_username,
            "title": post.origin_title, "message_id": post.origin_message_id,
            "author": post.origin_author, "date": post.date, "url": post.origin_url,
        },
        "sightings": [
            {"channel_id": s.channel_id, "username": s.username, "title": s.title,
             "message_id": s.message_id, "date": s.date, "relation": s.relation, "url": s.url,
             "deleted_at": s.deleted_at}
            for s in post.sightings
        ],
    }


def format_post(post: Post) -> str:
    """A post for people: date, origin, who else carried it, a snippet and links."""
    origin = _channel_name(post.origin_username, post.origin_title, post.origin_channel_id)
    head = f"{minute(post.date)}  {origin}"
    if post.origin_title and post.origin_username:
        head += f" ({post.origin_title})"
    others = [s for s in post.sightings if s.relation != "original"]
    if others:
        names = list(dict.fromkeys(_channel_name(s.username, s.title, s.channel_id).lstrip("@")
                                   for s in others))
        verb = "forwarded by" if any(s.relation == "forward" for s in others) else "copied by"
        more = f", +{len(names) - 1} more" if len(names) > 1 else ""
        head += f"  · {verb} {names[0]}{more}"
    flags = [flag for flag, on in (
        ("edited", post.edited_at is not None),
        ("deleted", any(s.deleted_at for s in post.sightings)),
    ) if on]
    if flags:
        head += f"  [{', '.join(flags)}]"
    snippet = _one_line(post.snippet or post.text, 300) or f"({post.media_kind or 'no text'})"
    links = list(dict.fromkeys(
        [u for u in (post.origin_url,) if u] + [s.url for s in post.sightings]
    ))[:3]
    lines = [head, *textwrap.wrap(snippet, width=100, initial_indent="  ", subsequent_indent="  ")]
    if links:
        lines.append("  " + "  ".join(links))
    return "\n".join(lines)


@command("search", "search the archive (the query language of /search and alert rules)", _search_arguments,
         "Search canonical posts. Words match by stem (sanction ~ sanctions, Канада ~ Канаде); "
         "OR, -word, \"exact phrase\", prefix*, #hashtag, channel:, from:, since:, until:, lang:, is:.")
def _search(args: argparse.Namespace) -> int:
    with open_archive(args) as conn:
        page = search.search(conn, args.query, limit=args.limit, offset=args.offset, exact_total=args.exact)
        if args.json:
            for post in page.posts:
                print(json.dumps(post_json(post), ensure_ascii=False))
            return EXIT_OK
        if not page.posts:
            more = f" (there are {page.total_text}; lower --offset)" if page.total else ""
            print(f"no posts found for {args.query!r}{more}")
            for name in page.unknown_channels:
                print(f"note: the archive knows no channel {name!r} (see chanwatch channels list)",
                      file=sys.stderr)
            return EXIT_OK
        first, last = args.offset + 1, args.offset + len(page.posts)
        print(f"{page.total_text} posts for {args.query!r}; showing {first}-{last}\n")
        print("\n\n".join(format_post(p) for p in page.posts))
        if last < page.total:
            print(f"\nmore: --offset {last}")
    return EXIT_OK


# --- stats -----------------------------------------------------------------------------------------


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


@command("stats", "counts: channels, posts, sightings, forwards, edits, deletions, index, size",
         _stats_arguments)
def _stats(args: argparse.Namespace) -> int:
    with open_archive(args) as conn:
        stats = archive_stats(conn)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
        return EXIT_OK
    width = max(len(k) for k in stats)
    print(f"archive: {args.db}")
    for name, value in stats.items():
        shown = _human_bytes(value) if name == "database bytes" else f"{value:,}"
        label = "database size" if name == "database bytes" else name
        print(f"  {label:<{width}}  {shown}")
    return EXIT_OK


__all__ = ["COMMANDS", "CliError", "Command", "build_parser", "command", "main", "open_archive", "register"]

# Sub-commands defined in other modules register themselves on import (they import this module).
from bot import cli_daemon, cli_manage  # noqa: E402, F401, I001  registers run, login, channels, rules, backfill
from bot import cli_demo  # noqa: E402, F401, I001  registers demo
