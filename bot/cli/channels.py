"""`chanwatch channels add|remove|list`: the watch list, on the archive alone (no Telegram).

A channel added by name is stored as a watched placeholder that the daemon resolves at start
(see `storage.channels.add_watch_name`).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    Command,
    add_command_parser,
    archive_path,
    open_archive,
    plural,
)
from bot.formatting import minute
from bot.names import parse_channel_name
from storage.channels import add_watch_name, channel_listing, unwatch_name
from storage.database import run_in_transaction
from storage.identity import set_source
from storage.records import WatchedChannel


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


def _channels_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = add_command_parser(sub, "add",
                             help="watch channels (resolved by the daemon at its next start or poll)")
    add.add_argument("names", nargs="+", metavar="CHANNEL", help="@username, username or t.me link")
    add.add_argument("--source", choices=("web", "api"), default=None,
                     help="read these channels through the web preview or the API, whatever "
                          "CHANWATCH_SOURCE says")
    remove = add_command_parser(sub, "remove", help="stop watching channels (their archived posts stay)")
    remove.add_argument("names", nargs="+", metavar="CHANNEL")
    listing = add_command_parser(sub, "list",
                                 help="watched channels: status, messages, last post, last poll")
    listing.add_argument("--all", action="store_true", help="also channels no longer watched")
    listing.add_argument("--json", action="store_true", help="one JSON object per channel per line")


def _add(conn: sqlite3.Connection, name: str, source: str | None, now: datetime) -> str:
    """Watch `name`; with a source, read it that way (`storage.identity.set_source`)."""
    outcome = add_watch_name(conn, name, now)
    if source is not None:
        set_source(conn, name, source, now)
    return outcome


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
    return (f"{row.name:<28} {status:<22} {row.messages:>7} {plural(row.messages, 'msg'):<4}  "
            f"last post {_short(row.last_post)}"
            f"  last poll {_short(row.last_poll)}{detail}"
            + (f"  via {row.source}" if row.source else ""))


def _channel_json(row: WatchedChannel) -> dict[str, Any]:
    return {"id": row.id if row.resolved else None, "username": row.username, "title": row.title,
            "watched": row.watched, "resolved": row.resolved, "status": row.status,
            "status_detail": row.status_detail, "messages": row.messages, "last_post": row.last_post,
            "last_poll": row.last_poll, "last_success": row.last_success, "cursor": row.cursor,
            "backfill_done": row.backfill_done, "source": row.source}


def _channels(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.action == "list":
        with open_archive(archive_path(args), readonly=True) as conn:
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
    with open_archive(archive_path(args), must_exist=args.action == "remove") as conn:
        for name in names:
            if args.action == "add":
                outcome = run_in_transaction(conn, _add, name, args.source, now)
                hint = " (the daemon resolves it when it starts)" if outcome == "added" else ""
                via = f", read through the {'web preview' if args.source == 'web' else 'API'}" \
                    if args.source else ""
                print(f"@{name}: {outcome}{via}{hint}")
            else:
                if run_in_transaction(conn, unwatch_name, name):
                    print(f"@{name}: no longer watched (its archived posts stay)")
                else:
                    print(f"{PROG}: @{name} is not watched", file=sys.stderr)
                    status = EXIT_USAGE
    return status


COMMANDS = (
    Command("channels", "watched channels: add, remove, list", _channels, _channels_arguments,
            "Manage the channels the daemon polls. `add` needs no Telegram access: the daemon resolves "
            "new names when it starts (or before its next poll). CHANWATCH_CHANNELS is added at every "
            "start. `add --source web` reads a channel through its public web preview (t.me/s/NAME)."),
)
