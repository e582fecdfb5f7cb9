"""/search and its page buttons: results five at a time, the query kept server-side behind a token;
/post, the whole record of one post (`storage.post_record`)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from typing import Any

from telethon import Button, errors

from bot import command_text as text
from bot.access import Caller
from bot.commands.base import EXPIRED, FAILED, MAX_INPUT, CommandsBase, Request
from bot.formatting import LIMIT, utf16_len
from bot.post_text import record_html
from storage.media_queue import files_of_post
from storage.post_record import PostRecord, PostRefError, find_post, post_record
from storage.query import Query, parse
from storage.records import PostFile
from storage.search import SearchPage, highlight_spans, search

__all__ = ["PAGE_DATA", "SearchCommands"]

PAGE_DATA = re.compile(rb"pg:([A-Za-z0-9_-]{1,16}):(\d{1,7})\Z")


class SearchCommands(CommandsBase):
    """/search, and the « Previous / Next » buttons under its results; /post."""

    PUBLIC = {**CommandsBase.PUBLIC, "search": "_search", "post": "_post"}

    async def _post(self, req: Request) -> None:
        if not req.args:
            await self._reply(req.event, text.usage("post"))
            return
        try:
            record = await self._db(_record, req.args)
        except PostRefError as exc:
            await self._reply(req.event, text.post_not_found(exc))
            return
        await self._reply(req.event, record_html(record))

    async def _search(self, req: Request) -> None:
        if not req.args:
            await self._reply(req.event, text.usage("search") + "\n\n" + text.SYNTAX)
            return
        query = await self._parsed(req)
        if query is None:
            return
        token = self.pages.put(req.caller.chat_id, req.args)
        note = text.cut_note(MAX_INPUT) if req.cut else ""
        body, buttons = await self._page(query, token, 0, note)
        sent = await self._reply(req.event, body, buttons)
        self.pages.bind(token, sent.id)

    async def _page(self, query: Query, token: str, offset: int, note: str = "") -> tuple[str, Any]:
        """One page of results (after `note`, all within Telegram's limit) and its buttons."""
        page, spans, files = await self._db(_search_page, query, offset, text.PAGE_SIZE)
        total = page.total
        body = note + text.results_page(query.text, page.posts, spans, total, offset,
                                        limit=LIMIT - utf16_len(note), total_exact=page.total_exact,
                                        unknown_channels=page.unknown_channels, files=files)
        row = []
        if offset > 0:
            row.append(Button.inline(text.PREVIOUS, f"pg:{token}:{max(offset - text.PAGE_SIZE, 0)}".encode()))
        if offset + text.PAGE_SIZE < total:
            row.append(Button.inline(text.NEXT, f"pg:{token}:{offset + text.PAGE_SIZE}".encode()))
        return body, [row] if row else None

    async def _handle_callback(self, event: Any) -> None:
        caller = Caller(event.sender_id, event.chat_id, bool(event.is_private))
        try:
            match = PAGE_DATA.fullmatch(event.data or b"")
            if match is None:
                await event.answer("This button no longer works.")
                return
            if not await self._db(self.access.chat_allowed, caller):
                self.log.info("refused a results button from user %s in chat %s", caller.user_id,
                              caller.chat_id)
                await event.answer("This chat is not allowed to use the bot.")
                return
            token, offset = match.group(1).decode(), int(match.group(2))
            page = self.pages.get(token, caller.chat_id, event.message_id)
            if page is None or offset % text.PAGE_SIZE:
                await event.answer(EXPIRED, alert=True)
                return
            body, buttons = await self._page(parse(page.query), token, offset)
            try:
                await event.edit(body, parse_mode="html", link_preview=False, buttons=buttons)
            except errors.MessageNotModifiedError:
                pass
            await event.answer()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("results button from user %s in chat %s failed",
                               caller.user_id, caller.chat_id)
            try:
                await event.answer(FAILED, alert=True)
            except Exception:
                self.log.exception("could not answer the button press")


def _search_page(conn: sqlite3.Connection, query: Query, offset: int, size: int
                 ) -> tuple[SearchPage, list[list[tuple[int, int]]], dict[int, list[PostFile]]]:
    page = search(conn, query, limit=size, offset=offset)
    files = {p.id: files_of_post(conn, p.id) for p in page.posts}
    return page, [highlight_spans(p.text, query) for p in page.posts], files


def _record(conn: sqlite3.Connection, ref: str) -> PostRecord:
    """The record of the post `ref` names (PostRefError when there is none)."""
    post_id = find_post(conn, ref)
    record = post_record(conn, post_id)
    if record is None:  # merged into another between the two reads
        raise PostRefError(f"post {post_id} was just merged into another")
    return record
