"""Who may use the bot: admins, the alert chat, and chats an admin allowed; how often a stranger
hears "no" (one short refusal per user per interval, so the bot cannot be used to spam or probe);
and which search a results button may turn (`PageCache`: only in the chat, and under the message,
where the search was made — callback data is client-supplied and can be forged).

Chat ids are Telethon's marked ids (`event.chat_id`): a user's id for a private chat, `-id` for a
basic group, `-100…` for a supergroup — the same ids the dispatcher sends alerts to.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Settings
from storage.rules import is_allowed

REFUSAL_INTERVAL = timedelta(minutes=1)
REMEMBERED_USERS = 10_000  # the refusal limiter forgets the least recently refused beyond this


@dataclass(frozen=True, slots=True)
class Caller:
    """Who wrote a command or pressed a button, and where."""

    user_id: int | None
    chat_id: int
    private: bool


class Access:
    """Access decisions from the settings (admins, alert chat) and the subscribers table (allowed)."""

    def __init__(self, settings: Settings) -> None:
        self.admins = frozenset(settings.admins)
        self.alert_chat = settings.alert_chat

    def is_admin(self, user_id: int | None) -> bool:
        """Whether the user is listed in CHANWATCH_ADMINS."""
        return user_id is not None and user_id in self.admins

    def chat_allowed(self, conn: sqlite3.Connection, caller: Caller) -> bool:
        """Whether archive content may go to the caller's chat (run on the database thread).

        A private chat is allowed for an admin; any chat is allowed if it is the alert chat or an
        admin allowed it. In a group the group must be allowed: an admin's presence is not enough.
        """
        if caller.private and self.is_admin(caller.user_id):
            return True
        if self.alert_chat is not None and caller.chat_id == self.alert_chat:
            return True
        return is_allowed(conn, caller.chat_id)


class RefusalLimiter:
    """At most one refusal message per user per `interval`; remembers a bounded number of users."""

    def __init__(self, now: Callable[[], datetime], interval: timedelta = REFUSAL_INTERVAL,
                 capacity: int = REMEMBERED_USERS) -> None:
        self.now = now
        self.interval = interval
        self.capacity = capacity
        self._last: OrderedDict[int | None, datetime] = OrderedDict()

    def should_answer(self, user_id: int | None) -> bool:
        """True (and remember the time) when the user has not been refused within the interval."""
        now = self.now()
        last = self._last.get(user_id)
        if last is not None and now - last < self.interval:
            return False
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return True


@dataclass(slots=True)
class _Page:
    chat_id: int
    query: str
    message_id: int | None = None


class PageCache:
    """Searches whose result pages can still be turned, by a short random token (callback data stays
    far under Telegram's 64 bytes); the least recently used are forgotten beyond `capacity`."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._pages: OrderedDict[str, _Page] = OrderedDict()

    def put(self, chat_id: int, query: str) -> str:
        """Remember a search made in `chat_id`; returns its token."""
        token = secrets.token_urlsafe(6)
        while token in self._pages:
            token = secrets.token_urlsafe(6)
        self._pages[token] = _Page(chat_id, query)
        while len(self._pages) > self.capacity:
            self._pages.popitem(last=False)
        return token

    def bind(self, token: str, message_id: int) -> None:
        """Tie a token to the message showing its results: only that message's buttons use it."""
        page = self._pages.get(token)
        if page is not None:
            page.message_id = message_id

    def get(self, token: str, chat_id: int, message_id: int) -> _Page | None:
        """The search behind a button of `message_id` in `chat_id`, or None if forgotten or foreign."""
        page = self._pages.get(token)
        if page is None or page.chat_id != chat_id or page.message_id not in (None, message_id):
            return None
        self._pages.move_to_end(token)
        return page
