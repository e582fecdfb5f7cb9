"""`chanwatch backfill`: read channels' history through the user session (`bot.backfill.backfill`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from typing import TextIO

from telethon import TelegramClient

from bot.backfill import BackfillError, BackfillReport, backfill
from bot.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    Command,
    day,
    int_at_least,
    settings_from_args,
)
from bot.config import Settings
from bot.daemon import UNREACHABLE, Prepare
from bot.telegram import FloodDeferred, FloodPolicy, describe_client, make_user_client, redact
from storage.database import Database, StorageError

BACKFILL_MAX_WAIT = 300.0  # a backfill may sit out flood waits up to 5 minutes before it gives up


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channels", nargs="+", metavar="CHANNEL", help="@username, t.me link or channel id")
    parser.add_argument("--since", type=day, metavar="DATE", help="stop at posts older than this day")
    parser.add_argument("--limit", type=int_at_least(1), metavar="N", help="at most N messages per channel")
    parser.add_argument("--takeout", action="store_true",
                        help="use a takeout (data export) session: fewer flood waits for big histories")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from this file instead of ./.env")


def _report_line(report: BackfillReport) -> str:
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
    out = out or sys.stdout
    api_id, api_hash = settings.require_api()
    settings.require_session()
    secrets = settings.secrets()
    try:
        client: TelegramClient = make_user_client(
            api_id=api_id, api_hash=api_hash, session=settings.session,
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
        except UNREACHABLE as exc:
            message = (f"cannot reach Telegram ({describe_client(client)}): {type(exc).__name__}: {exc}; "
                       "check the network, a proxy or TG_SERVER")
            raise CliError(redact(message, secrets), status=EXIT_FAILURE) from None
        if not authorised:
            variable = "TG_SESSION_FILE" if settings.session_file else "TG_SESSION"
            raise CliError(f"{variable}: the user session is not logged in (expired or revoked); "
                           "run `chanwatch login` and update it")
        try:
            db = await Database.open(settings.db_path)
        except StorageError as exc:
            raise CliError(str(exc)) from None
        flood = FloodPolicy(max_wait=BACKFILL_MAX_WAIT)
        for channel in channels:
            try:
                report = await backfill(db, client, channel, since=since, limit=limit, progress=progress,
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


async def _backfill(args: argparse.Namespace) -> int:
    return await backfill_channels(settings_from_args(args), args.channels, since=args.since,
                                   limit=args.limit, takeout=args.takeout, progress=not args.no_progress)


COMMANDS = (
    Command("backfill", "archive channels' history (resumable)", _backfill, _backfill_arguments,
            "Read each channel's history from the newest message (or where the last run stopped) back to "
            "its start, --since or --limit. Stopping loses at most one page; run again to resume."),
)
