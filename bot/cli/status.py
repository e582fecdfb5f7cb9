"""`chanwatch status`: the readers sharing the archive and the channels' leases (`storage.leases.status`).

Read-only, like `chanwatch stats`. A reader is alive while its last claim is younger than the lease
period (CHANWATCH_LEASE_SECONDS, default 60 s: what the readers themselves use); a lease is held,
lapsed (its reader stopped renewing it: another reader takes it at its next claim) or free.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cli.common import EXIT_OK, Command, archive_path, environment, open_archive
from bot.cli.table import output_width, table
from bot.command_text import short_delay
from bot.config import lease_seconds_from
from storage.leases import LeaseRow, ReaderRow, status
from storage.records import parse_iso

FORMATS = ("text", "json")
NO_READERS = "no readers have run on this archive"
NONE_RUNNING = "no reader is running on this archive now (the last ones stopped); every lease is free"


def lease_state(lease: LeaseRow) -> str:
    """'held', 'lapsed' (its reader stopped renewing it) or 'free'."""
    if lease.reader is None:
        return "free"
    return "lapsed" if lease.lapsed else "held"


def _seconds_since(value: str | None, now: datetime) -> int | None:
    """Whole seconds from the stored time `value` to `now` (None: no time)."""
    at = parse_iso(value)
    return None if at is None else max(0, int((now - at).total_seconds()))


def status_json(readers: Sequence[ReaderRow], leases: Sequence[LeaseRow], now: datetime,
                period: timedelta) -> dict[str, Any]:
    """`status --format json`: every reader and lease, with the ages the text output shows."""
    return {
        "now": now.isoformat(),
        "lease_seconds": int(period.total_seconds()),
        "readers": [{"name": r.name, "account_id": r.account_id, "started_at": r.started_at,
                     "seen_at": r.seen_at, "seen_seconds_ago": _seconds_since(r.seen_at, now),
                     "alive": r.alive, "channels": r.channels, "roles": list(r.roles)} for r in readers],
        "leases": [{"channel_id": lease.channel_id, "channel": lease.name, "reader": lease.reader,
                    "claimed_at": lease.claimed_at, "expires_at": lease.expires_at,
                    "age_seconds": _seconds_since(lease.claimed_at, now), "state": lease_state(lease)}
                   for lease in leases],
    }


def _ago(value: str | None, now: datetime) -> str:
    seconds = _seconds_since(value, now)
    return "-" if seconds is None else f"{short_delay(seconds)} ago"


def _reader_row(reader: ReaderRow, now: datetime) -> tuple[object, ...]:
    account = reader.account_id if reader.account_id is not None else "web only"
    started = reader.started_at[:16].replace("T", " ")
    return (reader.name, account, started, _ago(reader.seen_at, now), "yes" if reader.alive else "no",
            reader.channels, ", ".join(reader.roles) or "-")


def _lease_row(lease: LeaseRow, now: datetime) -> tuple[object, ...]:
    age = _seconds_since(lease.claimed_at, now)
    return (lease.name, lease.reader or "-", "-" if age is None else short_delay(age), lease_state(lease))


def status_lines(readers: Sequence[ReaderRow], leases: Sequence[LeaseRow], now: datetime,
                 period: timedelta, width: int) -> list[str]:
    """The text output: a table of readers and one of leases, or one plain line when none runs."""
    if not readers:
        return [NONE_RUNNING if leases else NO_READERS]
    alive = sum(r.alive for r in readers)
    within = short_delay(int(period.total_seconds()))
    lines = [f"readers: {len(readers)}, {alive} alive (seen within {within})"]
    lines += table(("reader", "account", "started", "last seen", "alive", "channels", "roles"),
                   [_reader_row(r, now) for r in readers], left=(0, 2, 4, 6), clip=(0,), width=width)
    held = sum(lease_state(lease) == "held" for lease in leases)
    lines.append(f"leases: {len(leases)} channel(s), {held} held")
    if leases:
        lines += table(("channel", "holder", "age", "state"), [_lease_row(lease, now) for lease in leases],
                       left=(0, 1, 3), clip=(0, 1), width=width)
    return lines


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")


def _status(args: argparse.Namespace) -> int:
    path = archive_path(args)
    period = timedelta(seconds=lease_seconds_from(environment(args)))
    now = datetime.now(UTC).replace(microsecond=0)
    with open_archive(path, readonly=True) as conn:
        readers, leases = status(conn, now, period)
    if args.format == "json":
        print(json.dumps(status_json(readers, leases, now, period), ensure_ascii=False))
        return EXIT_OK
    print(f"archive: {path}")
    for line in status_lines(readers, leases, now, period, output_width()):
        print(line)
    return EXIT_OK


COMMANDS = (
    Command("status", "the readers sharing this archive (alive, channels, roles) and the channels' leases",
            _status, _status_arguments),
)
