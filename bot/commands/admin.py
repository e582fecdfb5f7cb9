"""The admins' commands: /watch and /unwatch (through the daemon's hooks), /allow and /deny."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from bot import command_text as text
from bot.commands.base import CommandsBase, Request
from bot.formatting import escape
from storage.rules import set_allowed

__all__ = ["AdminCommands"]


class AdminCommands(CommandsBase):
    """Channels to watch and chats to let in; only `CHANWATCH_ADMINS` may use these."""

    ADMIN = {"watch": "_watch", "unwatch": "_unwatch", "allow": "_allow", "deny": "_deny"}

    async def _watch(self, req: Request) -> None:
        await self._channel_hook(req, self.watch)

    async def _unwatch(self, req: Request) -> None:
        await self._channel_hook(req, self.unwatch)

    async def _channel_hook(self, req: Request, hook: Callable[[str], Awaitable[str]] | None) -> None:
        if hook is None:
            await self._reply(req.event, f"/{req.name} is not available in this setup.")
            return
        name = req.args.split()[0] if req.args.split() else ""
        if not name:
            await self._reply(req.event, text.usage(req.name))
            return
        await self._reply(req.event, escape(await hook(name)))

    async def _allow(self, req: Request) -> None:
        await self._set_allowed(req, True)

    async def _deny(self, req: Request) -> None:
        await self._set_allowed(req, False)

    async def _set_allowed(self, req: Request, allowed: bool) -> None:
        raw = req.args
        if not raw and not req.caller.private:
            chat_id: int | None = req.caller.chat_id
        else:
            chat_id = int(raw) if re.fullmatch(r"-?\d{1,16}", raw) else None  # within SQLite's int64
        if chat_id is None:
            await self._reply(req.event, text.usage(req.name))
            return
        await self._tx(set_allowed, chat_id, allowed, self.now())
        await self._changed(chat_id)
        if allowed:
            message = f"✅ Chat <code>{chat_id}</code> may use the bot."
        else:
            message = f"⛔ Chat <code>{chat_id}</code> is denied; its rules are off."
            if chat_id == self.settings.alert_chat:
                message += " (It is CHANWATCH_ALERT_CHAT, which stays allowed by the config.)"
        self.log.info("admin %s %s chat %s", req.caller.user_id, "allowed" if allowed else "denied", chat_id)
        await self._reply(req.event, message)
