"""`chanwatch channels`, `chanwatch rules` and `chanwatch backfill`: manage what the daemon does.

`channels` and `rules` work on the archive alone (no Telegram): a channel added by name is stored
as a watched placeholder that the daemon resolves at start (see `bot.service.add_watch_name`).
`rules test` shows which archived posts a rule would match — the same search `/search` runs.
`backfill` reads history through the user session (`bot.backfill.backfill`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, TextIO

from telethon import TelegramClient
from tqdm import tqdm

from bot.cli import EXIT_OK, EXIT_USAGE, CliError, command, format_post, int_at_least, open_archive
from bot.cli_daemon import settings_from_args
from bot.config import ConfigError, Settings, load_settings
from bot.formatting import minute
from bot.names import parse_channel_name
from bot.service import Prepare
from bot.telegram import FloodDeferred, FloodPolicy, make_user_client, redact
from storage.channels import add_watch_name, channel_listing, unwatch_name
from storage.database import Database, StorageError, run_in_transaction
from storage.progress import Progress
from storage.records import WatchedChannel
from storage.rules import RuleError, add_rule, list_rules, remove_rule
from storage.search import search

__all__ = ["BACKFILL_MAX_WAIT", "backfill_channels", "format_channel"]

PROG = "chanwatch"
BACKFILL_MAX_WAIT = 300.0  # a backfill may sit out flood waits up to 5 minutes before it gives up


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _chat_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a numeric chat id: {text!r}") from None


def _names(values: Sequence[str]) -> list[str]:
    """Usernames from @name / name / t.me links; every bad one is reported before anything changes."""
    out, bad = [], []
    for value in values:
        try:
            out.append(parse_channel_name(value))
        except ValueError as exc:
            bad.append(str(exc))
    if bad:
        raise CliError("; ".join(bad))
    return list(dict.fromkeys(out))


# --- channels -----------------------------------------------------------------------------------


def _channels_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="watch channels (resolved by the daemon at its next start or poll)")
    add.add_argument("names", nargs="+", metavar="CHANNEL", help="@username, username or t.me link")
    remove = sub.add_parser("remove", help="stop watching channels (their archived posts stay)")
    remove.add_argument("names", nargs="+", metavar="CHANNEL")
    listing = sub.add_parser("list", help="watched channels: status, messages, last post, last poll")
    listing.add_argument("--all", action="store_true", help="also channels no longer watched")
    listing.add_argument("--json", action="store_true", help="one JSON object per channel per line")


def _short(stamp: str | None) -> str:
    return minute(stamp) if stamp else "-"


def format_channel(row: WatchedChannel) -> str:
    """One line of `channels list`."""
    if not row.watched:
        status = "not watched"
    elif not row.resolved:
        status = "pending" if row.status == "ok" else f"unresolved: {row.status}"
    else:
        status = row.status
    detail = f"  ({row.status_detail})" if row.status_detail and row.status != "ok" else ""
    return (f"{row.name:<28} {status:<22} {row.messages:>7} msgs  last post {_short(row.last_post)}"
            f"  last poll {_short(row.last_poll)}{detail}")


def _channel_json(row: WatchedChannel) -> dict[str, Any]:
    return {"id": row.id if row.resolved else None, "username": row.username, "title": row.title,
            "watched": row.watched, "resolved": row.resolved, "status": row.status,
            "status_detail": row.status_detail, "messages": row.messages, "last_post": row.last_post,
            "last_poll": row.last_poll, "last_success": row.last_success, "cursor": row.cursor,
            "backfill_done": row.backfill_done}


@command("channels", "watched channels: add, remove, list", _channels_arguments,
         "Manage the channels the daemon polls. `add` needs no Telegram access: the daemon resolves "
         "new names when it starts (or before its next poll). CHANWATCH_CHANNELS is added at every start.")
def _channels(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.action == "list":
        with open_archive(args) as conn:
            found = channel_listing(conn, include_unwatched=args.all)
        if args.json:
            for row in found:
                print(json.dumps(_channel_json(row), ensure_ascii=False))
        elif not found:
            print("no watched channels; add one with `chanwatch channels add @name`", file=sys.stderr)
        else:
            for row in found:
                print(format_channel(row))
        return EXIT_OK
    names = _names(args.names)
    status = EXIT_OK
    with open_archive(args, must_exist=args.action == "remove") as conn:
        for name in names:
            if args.action == "add":
                outcome = run_in_transaction(conn, add_watch_name, name, now)
                hint = " (the daemon resolves it when it starts)" if outcome == "added" else ""
                print(f"@{name}: {outcome}{hint}")
            else:
                if run_in_transaction(conn, unwatch_name, name):
                    print(f"@{name}: no longer watched (its archived posts stay)")
                else:
                    print(f"{PROG}: @{name} is not watched", file=sys.stderr)
                    status = EXIT_USAGE
    return status


# --- rules --------------------------------------------------------------------------------------


def _default_chat() -> int | None:
    """CHANWATCH_ALERT_CHAT from the environment or .env, if it is set and valid."""
    try:
        return load_settings().alert_chat
    except ConfigError:
        return None


def _rules_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    chat_help = "the subscriber chat id (default: CHANWATCH_ALERT_CHAT)"
    add = sub.add_parser("add", help="add an alert rule (a saved search)")
    add.add_argument("query", metavar="QUERY", help="a search query, e.g. 'canada sanctions -visa'")
    add.add_argument("--chat", type=_chat_id, help=chat_help)
    listing = sub.add_parser("list", help="rules of one chat (or of every chat)")
    listing.add_argument("--chat", type=_chat_id, help="only this chat's rules")
    listing.add_argument("--json", action="store_true", help="one JSON object per rule per line")
    remove = sub.add_parser("remove", help="remove a rule by id")
    remove.add_argument("rule_id", type=int, metavar="ID")
    remove.add_argument("--chat", type=_chat_id, help="refuse unless the rule belongs to this chat")
    test = sub.add_parser("test", help="which archived posts a rule would match")
    test.add_argument("query", metavar="QUERY")
    test.add_argument("--since", type=_date, metavar="DATE", help="only posts from this day on (YYYY-MM-DD)")
    test.add_argument("--limit", type=int_at_least(1), default=10, help="posts to show (default 10)")


@command("rules", "alert rules: add, list, remove, test", _rules_arguments,
         "Alert rules are saved searches in the query language of `chanwatch search` and /search: a new "
         "post alerts a chat when searching for one of its rules would find it.")
def _rules(args: argparse.Namespace) -> int:
    if args.action == "test":
        return _rules_test(args)
    chat = args.chat
    if args.action == "add" and chat is None:
        chat = _default_chat()
        if chat is None:
            raise CliError("rules add: give --chat CHAT_ID (or set CHANWATCH_ALERT_CHAT)")
    with open_archive(args, must_exist=args.action != "add") as conn:
        try:
            if args.action == "add":
                rule, created = run_in_transaction(conn, add_rule, chat, args.query)
                verb = "added" if created else "already there"
                print(f"rule {rule.id} {verb} for chat {rule.chat_id}: {rule.query}")
            elif args.action == "remove":
                rule = run_in_transaction(conn, remove_rule, args.rule_id, chat)
                print(f"rule {rule.id} removed from chat {rule.chat_id}: {rule.query}")
            else:
                rules = list_rules(conn, chat)
                for rule in rules:
                    if args.json:
                        print(json.dumps({"id": rule.id, "chat_id": rule.chat_id, "query": rule.query,
                                          "active": rule.active, "created_at": rule.created_at},
                                         ensure_ascii=False))
                    else:
                        state = "" if rule.active else "  (inactive)"
                        print(f"{rule.id:>5}  chat {rule.chat_id}  {rule.query}{state}")
                if not rules and not args.json:
                    print("no rules" + (f" for chat {chat}" if chat is not None else ""), file=sys.stderr)
        except RuleError as exc:
            raise CliError(str(exc)) from None
    return EXIT_OK


def _rules_test(args: argparse.Namespace) -> int:
    text = args.query.strip()
    if args.since is not None:
        text = f"({text}) since:{args.since.isoformat()}" if text else f"since:{args.since.isoformat()}"
    with open_archive(args) as conn:
        page = search(conn, text, limit=args.limit)
    noun = "post" if page.total == 1 and page.total_exact else "posts"
    print(f"{page.total_text} archived {noun} match {args.query!r}"
          + (f" since {args.since.isoformat()}" if args.since else ""))
    for post in page.posts:
        print(format_post(post))
    if page.total > len(page.posts):
        more = page.total - len(page.posts)
        print(f"… and {'' if page.total_exact else 'at least '}{more:,} more (--limit to see more)")
    return EXIT_OK


# --- backfill -----------------------------------------------------------------------------------


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channels", nargs="+", metavar="CHANNEL", help="@username, t.me link or channel id")
    parser.add_argument("--since", type=_date, metavar="DATE", help="stop at posts older than this day")
    parser.add_argument("--limit", type=int_at_least(1), metavar="N", help="at most N messages per channel")
    parser.add_argument("--takeout", action="store_true",
                        help="use a takeout (data export) session: fewer flood waits for big histories")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from this file instead of ./.env")


def _report_line(report: Any) -> str:
    name = f"@{report.username}" if report.username else str(report.channel_id)
    state = "complete" if report.done else f"resumable below id {report.backfill_before}"
    return (f"{name}: {report.messages} messages ({report.new_messages} new), {report.pages} pages, "
            f"{report.requests} requests, stopped by {report.stopped_by}; {state}")


async def backfill_channels(
    settings: Settings,
    channels: Sequence[str],
    *,
    since: date | None = None,
    limit: int | None = None,
    takeout: bool = False,
    progress: bool = True,
    prepare: Prepare | None = None,
    out: TextIO | None = None,
) -> int:
    """Backfill each channel through the user session; one line per channel, exit 2 if any failed.

    Backfilled history is archived without alerting (no percolator): old posts are not news.
    """
    from bot.backfill import BackfillError, backfill

    out = out or sys.stdout
    if settings.api_id is None or settings.api_hash is None or (settings.session is None
                                                                and settings.session_file is None):
        missing = ("TG_API_ID" if settings.api_id is None else "TG_API_HASH" if settings.api_hash is None
                   else "TG_SESSION")
        raise CliError(f"{missing}: not set; backfill reads channels through the user session "
                       "(see `chanwatch login` and config.example.env)")
    secrets = settings.secrets()
    try:
        client: TelegramClient = make_user_client(
            api_id=settings.api_id, api_hash=settings.api_hash, session=settings.session,
            session_file=settings.session_file, server=settings.server,
            server_public_key_pem=settings.server_public_key, dc_id=settings.server_dc,
            flood_sleep_threshold=0)
    except ValueError as exc:
        raise CliError(f"TG_SESSION: {exc}") from None
    if prepare is not None:
        prepare(client, "user")
    status = EXIT_OK
    db: Database | None = None
    try:
        try:
            await client.connect()
            authorised = await client.is_user_authorized()
        except (OSError, ConnectionError) as exc:
            raise CliError(f"cannot reach Telegram: {exc}") from None
        if not authorised:
            raise CliError("TG_SESSION: the user session is not logged in; run `chanwatch login`")
        try:
            db = await Database.open(settings.db_path)
        except StorageError as exc:
            raise CliError(str(exc)) from None
        flood = FloodPolicy(max_wait=BACKFILL_MAX_WAIT)
        bars = _terminal_bars() if progress and sys.stderr.isatty() else None
        for channel in channels:
            try:
                report = await backfill(db, client, channel, since=since, limit=limit, progress=bars,
                                        takeout=takeout, flood=flood)
            except (BackfillError, FloodDeferred) as exc:
                print(f"{PROG}: backfill {channel}: {redact(str(exc), secrets)}", file=sys.stderr)
                status = EXIT_USAGE
                continue
            print(_report_line(report), file=out)
    finally:
        if db is not None:
            await db.close()
        await client.disconnect()
    return status


def _terminal_bars() -> Progress:
    """A Progress that draws one tqdm bar per label on stderr (closed when the label's total is reached)."""
    shown: dict[str, tqdm] = {}

    def update(label: str, done: int, total: int | None) -> None:
        bar = shown.get(label)
        if bar is None:
            bar = shown[label] = tqdm(total=total, unit="msg", desc=label, dynamic_ncols=True)
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update


@command("backfill", "archive channels' history (resumable)", _backfill_arguments,
         "Read each channel's history from the newest message (or where the last run stopped) back to "
         "its start, --since or --limit. Stopping loses at most one page; run again to resume.")
async def _backfill(args: argparse.Namespace) -> int:
    return await backfill_channels(settings_from_args(args), args.channels, since=args.since,
                                   limit=args.limit, takeout=args.takeout, progress=not args.no_progress)
