"""Logging for the daemon: one handler on the root logger, text or JSON lines, secrets redacted.

`setup_logging` installs a single stream handler carrying a `RedactingFilter` for the configured
secrets, so no log line — ours or Telethon's, message or traceback — can carry the api hash, a
session string or the bot token. `--log-format json` writes one JSON object per line (ts, level,
logger, message, plus any `extra=` fields) for log collectors.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.telegram import RedactingFilter, redact

__all__ = ["FORMATS", "JsonFormatter", "setup_logging", "teardown_logging"]

FORMATS = ("text", "json")
_QUIET = ("telethon", "apscheduler")
_saved_levels: dict[int, dict[str, int]] = {}
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (ISO-8601 UTC), level, logger, message, extra fields, exc."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        """Serialise `record`; extra values that are not JSON types are written with `str`."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in payload:
                payload[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        # Extra fields bypass the filter's message redaction, so the whole line is redacted too.
        return redact(json.dumps(payload, ensure_ascii=False, default=str), self._secrets)


class _RedactingTextFormatter(logging.Formatter):
    """The text format, with the final line redacted as a last line of defence."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__(TEXT_FORMAT)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        """The usual text line, secrets replaced."""
        return redact(super().format(record), self._secrets)


def setup_logging(
    log_format: str = "text",
    *,
    secrets: Iterable[str | None] = (),
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install the daemon's handler on the root logger and return it (for `teardown_logging`).

    `secrets` are redacted from every record (message, args and traceback). Raises ValueError for
    an unknown format.
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    secret_list = [s for s in secrets if s]
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter(secret_list))
    handler.setFormatter(JsonFormatter(secret_list) if log_format == "json"
                         else _RedactingTextFormatter(secret_list))
    root = logging.getLogger()
    # Telethon and APScheduler are chatty at INFO (every reconnect, every job run); their warnings
    # and errors still come through. The previous levels come back with `teardown_logging`.
    saved = {name: logging.getLogger(name).level for name in ("", *_QUIET)}
    _saved_levels[id(handler)] = saved
    root.addHandler(handler)
    root.setLevel(level)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def teardown_logging(handler: logging.Handler) -> None:
    """Remove and close a handler installed by `setup_logging`."""
    logging.getLogger().removeHandler(handler)
    handler.close()
    for name, level in _saved_levels.pop(id(handler), {}).items():
        logging.getLogger(name).setLevel(level)
