"""Sparklines resampled over time (a fast start shows as a steep start), with first and last values
and the span beside them; durations and delays for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.sparkline import BARS, curve_text, delay_text, duration_text, sparkline

T = datetime(2025, 12, 17, 10, 0, tzinfo=UTC)


def test_bars_are_resampled_over_time_not_over_readings() -> None:
    # Three readings: most views in the first hour, then flat for two days. Over readings this would be
    # a steady ▁▄█; over time the curve jumps at once and stays near the top.
    curve = sparkline([(T, 0), (T + timedelta(hours=1), 900), (T + timedelta(days=2), 1000)], width=10)
    assert len(curve.bars) == 10
    assert curve.bars[0] == BARS[0] and curve.bars[-1] == BARS[-1]
    assert all(bar in BARS[-2:] for bar in curve.bars[1:])


def test_a_steady_growth_is_a_straight_ramp() -> None:
    curve = sparkline([(T, 0), (T + timedelta(hours=7), 7)], width=8)
    assert curve.bars == BARS


def test_readings_out_of_order_and_unknown_values_are_handled() -> None:
    curve = sparkline([(T + timedelta(hours=2), 20), (T, 10), (T + timedelta(hours=1), None)], width=4)
    assert (curve.first, curve.last, curve.readings, curve.span_s) == (10, 20, 2, 7200.0)


def test_the_text_gives_first_and_last_value_and_the_span() -> None:
    curve = sparkline([(T, 120), (T + timedelta(days=2, hours=3), 5400)], width=5)
    assert curve_text(curve) == f"{curve.bars} 120 → 5,400 views over 2 d 3 h (2 readings)"


def test_a_single_reading_or_none_says_so() -> None:
    assert curve_text(sparkline([(T, 42)])) == "one reading: 42 views"
    assert curve_text(sparkline([])) == "no readings"
    assert curve_text(sparkline([(T, None)])) == "no readings"


def test_a_flat_curve_is_the_lowest_bar() -> None:
    assert sparkline([(T, 5), (T + timedelta(hours=1), 5)], width=3).bars == BARS[0] * 3


def test_durations_and_delays_read_as_people_say_them() -> None:
    assert duration_text(45) == "45 s"
    assert duration_text(12 * 60 + 5) == "12 min"
    assert duration_text(2 * 3600 + 13 * 60) == "2 h 13 min"
    assert duration_text(3600) == "1 h"
    assert duration_text(3 * 86400 + 4 * 3600 + 59) == "3 d 4 h"
    assert delay_text(2 * 3600 + 13 * 60) == "+2 h 13 min"
    assert delay_text(-300) == "−5 min"
