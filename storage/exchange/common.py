"""What the importers share: the error that names a bad file, the report of one import, compact JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BATCH_SIZE", "ExchangeError", "ImportReport", "json_text", "no_progress"]

BATCH_SIZE = 500
"""Messages per import transaction."""


class ExchangeError(Exception):
    """A file cannot be imported or exported; the message names it and says what was expected."""


@dataclass(slots=True)
class ImportReport:
    """What one imported file held and what it changed (messages are counted once each)."""

    format: str  # "desktop" or "jsonl"
    channel: str  # the channel's name (desktop), or "N channels" (jsonl)
    path: str = ""
    messages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    service_skipped: int = 0
    posts_new: int = 0
    channels: set[int] = field(default_factory=set, repr=False)


def json_text(value: Any) -> str:
    """Compact JSON, as `storage.ingest` stores it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def no_progress(label: str, done: int, total: int | None) -> None:
    """The `Progress` of a caller that does not want to know."""
