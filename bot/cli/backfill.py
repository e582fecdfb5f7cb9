"""`chanwatch backfill`: read channels' history through the user session (`bot.backfill.backfill`), or
with `--source web` from the public web preview (`bot.web.reader.WebReader.backfill`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from typing import TextIO

from bot.backfill import BackfillError, BackfillReport, backfill
from bot.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    Command,
    day,
    int_at_least,
    plural,
    settings_from_args,
)
from bot.cli.progress import progress_bars
from bot.config import Settings
from bot.connect import Prepare, connect_user
from bot.names import parse_channel_name
from bot.telegram import FloodDeferred, FloodPolicy, redact
from bot.web.http import WebClient, WebError
from bot.web.reader import WebReader
from storage.database import Database

BACKFILL_MAX_WAIT = 300.0  # a backfill may sit out flood waits up to 5 minutes before it gives up


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channels", nargs="+", metavar="CHANNEL", help="@username, t.me link or channel id")
    parser.add_argument("--since", type=day, metavar="DATE", help="stop at posts older than this day")
    parser.add_argument("--limit", type=int_at_least(1), metavar="N", help="at most N messages per channel")
    parser.add_argument("--takeout", action="store_true",
                        help="use a takeout (data export) session: fewer flood waits for big histories")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--source", choices=("api", "web"), default=None,
                        help="read the history through the API or the public web preview "
                             "(default: CHANWATCH_SOURCE)")


def _report_line(report: BackfillReport) -> str:
    name = f"@{report.username}" if report.username else str(report.channel_id)
    state = "complete" if report.done else f"resumable below id {report.backfill_before}"
    return (f"{name}: {report.messages} {plural(report.messages, 'message')} ({report.new_messages} new), "
            f"{report.pages} {plural(report.pages, 'page')}, {report.requests} "
            f"{plural(report.requests, 'request')}, stopped by {report.stopped_by}; {state}")


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
    source: str | None = None,
) -> int:
    """Backfill each channel through the user session; one line per channel, exit 2 if any failed.

    Backfilled history is archived without alerting (no percolator): old posts are not news.
    `source` 'web' (or CHANWATCH_SOURCE=web) pages back through the public web preview; 'auto' keeps
    the API, so a missing session is named rather than a long history read 20 posts a page.
    `progress` draws a bar per channel on a terminal (see `bot.cli.progress`).
    """
    out = out or sys.stdout
    if (source or settings.source) == "web":  # 'auto' stays the API: a long history is slow by web
        if takeout:
            raise CliError("--takeout is for the API; the web preview needs no session")
        return await _backfill_web(settings, channels, since=since, limit=limit, progress=progress, out=out)
    secrets = settings.secrets()
    client = await connect_user(settings, prepare=prepare)
    status = EXIT_OK
    db: Database | None = None
    try:
        db = await Database.open(settings.db_path)
        flood = FloodPolicy(max_wait=BACKFILL_MAX_WAIT)
        for channel in channels:
            try:
                with progress_bars(progress, unit="msg") as bars:  # gone before the channel's line
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


async def _backfill_web(settings: Settings, names: Sequence[str], *, since: date | None, limit: int | None,
                        progress: bool, out: TextIO) -> int:
    """Backfill each channel from its web preview (`WebReader.backfill`); one line per channel."""
    try:
        usernames = [parse_channel_name(n) for n in names]
    except ValueError as exc:
        raise CliError(str(exc)) from None
    status = EXIT_OK
    db = await Database.open(settings.db_path)
    try:
        async with WebClient(settings.web_url, rate=settings.web_rate) as web:
            reader = WebReader(db, web)
            for username in usernames:
                try:
                    with progress_bars(progress, unit="msg") as bars:
                        report = await reader.backfill(username, since=since, limit=limit, progress=bars)
                except WebError as exc:
                    print(f"{PROG}: backfill @{username}: {exc}; run it again later to resume",
                          file=sys.stderr)
                    status = EXIT_USAGE
                    continue
                print(_report_line(report), file=out)
    finally:
        await db.close()
    return status


async def _backfill(args: argparse.Namespace) -> int:
    return await backfill_channels(settings_from_args(args), args.channels, since=args.since,
                                   limit=args.limit, takeout=args.takeout, progress=not args.no_progress,
                                   source=args.source)


COMMANDS = (
    Command("backfill", "archive channels' history (resumable)", _backfill, _backfill_arguments,
            "Read each channel's history from the newest message (or where the last run stopped) back to "
            "its start, --since or --limit. Stopping loses at most one page; run again to resume. "
            "--source web reads the public web preview (t.me/s/NAME) and needs no Telegram account."),
)
