"""A text sparkline of an engagement curve (`▁▂▃▄▅▆▇█`), and durations for people ("2 h 13 min").
Pure functions, for the terminal and the bot alike.

Readings come on a widening schedule (minutes apart at first, days apart later), so the curve is
resampled over time, not over readings: each bar is the value at an evenly spaced moment between the
first and the last reading, interpolated linearly between the readings around it. A post that gained
most of its views in the first hour then shows a steep start and a long flat tail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["BARS", "Curve", "curve_text", "delay_text", "duration_text", "sparkline"]

BARS = "▁▂▃▄▅▆▇█"
WIDTH = 20


@dataclass(frozen=True, slots=True)
class Curve:
    """A resampled curve: `bars` (empty with fewer than two readings at distinct times), the first and
    last values, the seconds between the first and last reading, and how many readings there were."""

    bars: str
    first: int | None
    last: int | None
    span_s: float
    readings: int


def sparkline(points: Sequence[tuple[datetime, int | None]], width: int = WIDTH) -> Curve:
    """The curve of `points` (time, value; unknown values are left out) as `width` bars from the lowest
    to the highest value, each the value at an evenly spaced moment of the readings' span."""
    known = sorted((at, value) for at, value in points if value is not None)
    if not known:
        return Curve("", None, None, 0.0, 0)
    t0, t1 = known[0][0], known[-1][0]
    span = (t1 - t0).total_seconds()
    first, last = known[0][1], known[-1][1]
    if span <= 0 or width < 2:
        return Curve("", first, last, max(span, 0.0), len(known))
    values = [_at(known, t0.timestamp() + span * i / (width - 1)) for i in range(width)]
    lo, hi = min(values), max(values)
    top = len(BARS) - 1
    bars = "".join(BARS[0 if hi == lo else round((v - lo) / (hi - lo) * top)] for v in values)
    return Curve(bars, first, last, span, len(known))


def _at(known: list[tuple[datetime, int]], moment: float) -> float:
    """The value at `moment` (a timestamp), interpolated between the readings around it."""
    before = known[0]
    for point in known:
        at = point[0].timestamp()
        if at >= moment:
            t_before = before[0].timestamp()
            if at == t_before:
                return float(point[1])
            share = (moment - t_before) / (at - t_before)
            return before[1] + (point[1] - before[1]) * share
        before = point
    return float(known[-1][1])


def duration_text(seconds: float) -> str:
    """A duration for people: '45 s', '12 min', '2 h 13 min', '3 d 4 h' (rounded down)."""
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def delay_text(seconds: float) -> str:
    """A delay after the origin: '+2 h 13 min'; '−5 min' for a sighting dated before it."""
    return ("−" if seconds < 0 else "+") + duration_text(seconds)


def curve_text(curve: Curve, unit: str = "views") -> str:
    """A curve with its first and last value and its span: '▁▃▆██ 120 → 5,400 views over 2 d 3 h
    (8 readings)'; a single reading or none says so."""
    if curve.readings == 0:
        return "no readings"
    if not curve.bars:
        return f"one reading: {curve.last:,} {unit}" if curve.readings == 1 else \
            f"{curve.readings} readings at one moment: {curve.last:,} {unit}"
    return (f"{curve.bars} {curve.first:,} → {curve.last:,} {unit} over {duration_text(curve.span_s)} "
            f"({curve.readings} readings)")
