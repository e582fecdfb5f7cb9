"""Time in the daemon, in one neutral place: the wall clock, the injectable clock and sleep types, and
crontab schedules. The poller, the dispatcher and the bot commands share these without importing
each other.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

__all__ = ["Clock", "Sleep", "cron_trigger", "utcnow"]

Clock = Callable[[], datetime]
"""What tells the time: `utcnow` in the daemon, a virtual clock in tests and the demo."""

Sleep = Callable[[float], Awaitable[Any]]
"""What waits: `asyncio.sleep` in the daemon, a recording fake in tests."""


def utcnow() -> datetime:
    """The wall clock, timezone-aware UTC (the default `now` of the daemon's parts)."""
    return datetime.now(UTC)


_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A CronTrigger for a standard 5-field crontab line in `timezone`.

    APScheduler 3.x numbers weekdays from Monday = 0, crontab from Sunday = 0 (both 0 and 7);
    numeric weekdays are rewritten as names first, so "0 8 * * 1-5" means Monday to Friday as
    anyone writing a crontab expects. Raises ValueError for a bad expression or time zone.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a schedule needs 5 cron fields (minute hour day month weekday), got {expr!r}")

    def name(match: re.Match[str]) -> str:
        number = int(match.group())
        if number > 7:
            raise ValueError(f"weekday {number} is out of range 0-7 in {expr!r}")
        return _DOW_NAMES[number]

    fields[4] = ",".join(re.sub(r"\d+", name, part) if "/" not in part else part
                         for part in fields[4].split(","))
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r} (use a name like Europe/Moscow)") from exc
    return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
