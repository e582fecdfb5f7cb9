"""The one backoff rule: channel polls and alert sends both wait longer after each failure in a row."""

from __future__ import annotations

from datetime import timedelta


def doubling(failures: int, base: float, cap: float) -> timedelta:
    """`base` seconds after the first consecutive failure, doubling with each further one, at most `cap`."""
    exponent = min(max(failures - 1, 0), 20)  # 2**20 * base is past any cap; keeps the float small
    return timedelta(seconds=min(base * 2**exponent, cap))
