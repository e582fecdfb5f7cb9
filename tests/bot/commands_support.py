"""Shared helpers for the bot command tests (tests/bot/test_commands*.py): a harness that starts
`Commands` on the simulated bot, fills the archive through ingest, and reads what the bot answered."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import helpers, types
from telethon.client import TelegramClient

from bot.commands import Commands
from bot.config import Settings
from bot.simulator import ChatLogEntry, SimChat, SimUser, World
from storage.database import Database
from storage.ingest import ingest_batch
from storage.records import Channel
from storage.rules import set_allowed
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, T0, batch, fwd, msg

NOW = T0 + timedelta(days=1)  # the commands' clock: a day after the factories' posts
CHANNELS = {c.id: c for c in (MFA, EMBASSY, EMBASSY_UK)}


def sanction_texts(n: int) -> list[str]:
    """`n` distinct post texts that all match `sanctions`."""
    return [f"Update {i}: new sanctions list number {i} published by the ministry today" for i in range(n)]


def fill(conn: sqlite3.Connection, texts: list[str], channel: Channel = MFA, first_id: int = 100,
         start: datetime = T0) -> None:
    """Ingest one original post per text into `channel`, a minute apart (later texts are newer)."""
    for i, body in enumerate(texts):
        record = msg(channel, first_id + i, body, minutes=int((start - T0).total_seconds() // 60) + i)
        ingest_batch(conn, batch(channel, record), start)


def statement_with_forwards(conn: sqlite3.Connection) -> None:
    """The MFA statement and its forwards by two embassies: one post, three sightings."""
    for record in (msg(MFA, 10, STATEMENT), fwd(EMBASSY, 500, MFA, 10, STATEMENT),
                   fwd(EMBASSY_UK, 700, MFA, 10, STATEMENT, minutes=9)):
        ingest_batch(conn, batch(CHANNELS[record.channel_id], record), T0)


class Harness:
    """Starts `Commands` on the simulated bot client and reads the answers."""

    def __init__(self, world: World, db: Database, client: TelegramClient, bot_account: SimUser) -> None:
        self.world = world
        self.db = db
        self.client = client
        self.bot_account = bot_account
        self.started: list[Commands] = []
        self.changes: list[int] = []
        world.now = NOW

    def start(self, settings: Settings | None = None, **kwargs: Any) -> Commands:
        """Register a `Commands` on the World's clock; subscription changes are recorded."""
        kwargs.setdefault("on_subscription_change", self._changed)
        commands = Commands(self.db, self.client, settings or Settings(), now=lambda: self.world.now,
                            **kwargs)
        commands.register()
        self.started.append(commands)
        return commands

    async def _changed(self, chat_id: int) -> None:
        self.changes.append(chat_id)

    async def settle(self) -> None:
        """`world.settle` with room for slow archive work on a loaded machine (it returns as soon as
        everything is quiet; the round limit only bounds a hang)."""
        await self.world.settle()

    def close(self) -> None:
        for commands in self.started:
            commands.unregister()

    async def allow(self, *chats: SimUser | SimChat | int) -> None:
        for chat in chats:
            await self.db.run(set_allowed, chat_id_of(chat), True)

    def answers(self, chat: SimUser | SimChat) -> list[ChatLogEntry]:
        """What the bot wrote in a private chat with `chat` (a user) or in a group, oldest first."""
        if isinstance(chat, SimChat):
            log = self.world.chat_log(chat)
        else:
            log = self.world.chat_log(chat, with_=self.bot_account)
        return [e for e in log if e.sender_id == self.bot_account.id]

    async def ask(self, user: SimUser, text: str, where: SimUser | SimChat | None = None) -> ChatLogEntry:
        """`user` writes `text` to the bot (or in a group); returns the bot's one new answer."""
        chat = where if where is not None else user
        before = len(self.answers(chat))
        self.world.say(user, where if where is not None else self.bot_account, text)
        await self.settle()
        new = self.answers(chat)[before:]
        assert len(new) == 1, f"expected one answer to {text!r}, got {[e.text for e in new]}"
        return new[0]

    async def click(self, user: SimUser, entry: ChatLogEntry, data: bytes) -> Any:
        """`user` presses the button with `data` under `entry`; returns the bot's callback answer."""
        future = self.world.click(user, entry, data)
        await self.settle()
        return future.result()


def chat_id_of(chat: SimUser | SimChat | int) -> int:
    """The marked chat id the bot sees (`-id` for a basic group)."""
    if isinstance(chat, int):
        return chat
    return -chat.id if isinstance(chat, SimChat) else chat.id


def bold(entry: ChatLogEntry) -> list[str]:
    """Texts of the bold entities of a message (offsets are UTF-16)."""
    text = helpers.add_surrogate(entry.text)
    return [helpers.del_surrogate(text[e.offset:e.offset + e.length]) for e in entry.entities
            if isinstance(e, types.MessageEntityBold)]


def code(entry: ChatLogEntry) -> list[str]:
    """Texts of the code entities of a message."""
    text = helpers.add_surrogate(entry.text)
    return [helpers.del_surrogate(text[e.offset:e.offset + e.length]) for e in entry.entities
            if isinstance(e, types.MessageEntityCode)]


def buttons(entry: ChatLogEntry) -> dict[str, bytes]:
    """Inline buttons of a message: label -> callback data (KeyboardButtonCallback on older layers,
    KeyboardInlineButton with an InlineButtonTypeCallback on newer ones)."""
    return {b.text: getattr(b, "data", None) or b.type.data for row in entry.buttons for b in row}


async def until(condition: Callable[[], bool], rounds: int = 200_000) -> None:
    """Turn the event loop (no wall-clock sleep) until `condition()` holds."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def at(hours: float = 0) -> datetime:
    """A time relative to NOW."""
    return NOW + timedelta(hours=hours)


__all__ = ["NOW", "UTC", "Harness", "at", "bold", "buttons", "chat_id_of", "code", "fill", "sanction_texts",
           "statement_with_forwards", "until"]
