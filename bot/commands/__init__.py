"""The bot's commands (/search, /report, the subscriber's /subscribe … /resume, /channels, /status,
the admins' /watch … /deny) with access control, on the Telethon bot client.

Split by concern as Telethon splits its client: `base` wires and dispatches, `search`,
`report`, `subscriber` and `admin` hold the handlers; `Commands` joins them.
"""

from __future__ import annotations

from bot.commands.admin import AdminCommands
from bot.commands.base import COMMAND, EXPIRED, FAILED, MAX_INPUT
from bot.commands.report import ReportCommands
from bot.commands.search import SearchCommands
from bot.commands.subscriber import SubscriberCommands, with_since

__all__ = ["COMMAND", "EXPIRED", "FAILED", "MAX_INPUT", "Commands", "with_since"]


class Commands(SearchCommands, ReportCommands, SubscriberCommands, AdminCommands):
    """The bot's command and button handlers; `register()` adds them to the bot client."""

    PUBLIC = {**SearchCommands.PUBLIC, **ReportCommands.PUBLIC, **SubscriberCommands.PUBLIC}
    ADMIN = AdminCommands.ADMIN
