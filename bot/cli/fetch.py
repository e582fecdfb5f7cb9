"""`chanwatch fetch LINK`: archive one public post (with its forward provenance) by its t.me link.

Through the API when a user session is configured (the channel resolved, the post read by id with
channels.GetMessages), else through the post's `?embed=1` web page (`bot.web.reader.WebReader`);
`--source` forces one. The channel is stored but not watched; a fetched post does not alert.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import datetime
from typing import TextIO

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from bot.cli.common import EXIT_OK, CliError, Command, settings_from_args
from bot.clock import utcnow
from bot.config import Settings
from bot.connect import Prepare, connect_user
from bot.history import records_of
from bot.names import parse_post_link, username_of
from bot.telegram import FloodDeferred, FloodPolicy, Requests, input_channel, redact
from bot.web.http import WebClient, WebError
from bot.web.reader import WebReader
from storage import channels, identity
from storage.database import Database
from storage.ingest import ingest
from storage.records import Batch, Channel, ChannelState, IngestResult, iso


def _fetch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("link", metavar="LINK", help="https://t.me/<channel>/<id>, t.me/s/<channel>/<id> "
                                                     "or @channel/<id>")
    parser.add_argument("--source", choices=("api", "web"), default=None,
                        help="read it through the API or the web preview (default: CHANWATCH_SOURCE)")


def _summary(username: str, message_id: int, result: IngestResult) -> str:
    url = f"https://t.me/{username}/{message_id}"
    if result.messages_new:
        posts = ", ".join(str(p) for p in result.new_post_ids)
        return (f"{url}: archived, {result.messages_new} new message(s)"
                + (f", new post {posts}" if posts else ", joined an archived post"))
    if result.messages_updated:
        return (f"{url}: already archived, {result.messages_updated} message(s) updated "
                f"({result.edits} edit(s))")
    return f"{url}: already archived, unchanged"


async def fetch_by_api(db: Database, client: TelegramClient, username: str, message_id: int,
                       now: datetime) -> IngestResult:
    """Resolve the channel, read the post by id, store both (the channel not watched; placeholders
    for its name adopted) and ingest the post without alerts."""
    requests = Requests(client, FloodPolicy(), now=utcnow)
    try:
        answer = await requests("resolve_username", functions.contacts.ResolveUsernameRequest(username))
        chat = next((c for c in answer.chats if isinstance(c, types.Channel)), None)
        if chat is None:
            raise CliError(f"@{username} is not a public channel")
        channel = Channel(chat.id, username_of(chat) or username, chat.title, chat.access_hash)
        state = ChannelState(chat.id, channel.username, chat.title, chat.access_hash)
        got = await requests("get_messages", functions.channels.GetMessagesRequest(
            input_channel(state), [types.InputMessageID(message_id)]))
    except (errors.UsernameNotOccupiedError, errors.UsernameInvalidError):
        raise CliError(f"@{username}: no such channel") from None
    except (errors.RPCError, FloodDeferred) as exc:
        raise CliError(f"@{username}/{message_id}: Telegram refused ({exc})") from None
    found = [m for m in got.messages if not isinstance(m, types.MessageEmpty)]
    records = records_of(found, got.chats, chat.id)
    if not records:
        raise CliError(f"https://t.me/{username}/{message_id}: no such post (deleted, or a service message)")

    def store(conn: sqlite3.Connection) -> IngestResult:
        channels.upsert_channel(conn, channel, iso(now) or "")
        identity.adopt_username(conn, channel, now)
        return ingest(conn, Batch(channel, tuple(records), seen_at=now), now)

    return await db.transaction(store)


async def fetch_link(settings: Settings, link: str, *, source: str | None = None,
                     prepare: Prepare | None = None, out: TextIO | None = None) -> int:
    """Archive the post `link` names; one line saying what was stored."""
    out = out or sys.stdout
    try:
        username, message_id = parse_post_link(link)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    way = source or settings.default_source
    db = await Database.open(settings.db_path)
    try:
        if way == "api":
            client = await connect_user(settings, prepare=prepare)
            try:
                result = await fetch_by_api(db, client, username, message_id, utcnow())
            finally:
                await client.disconnect()
        else:
            async with WebClient(settings.web_url, rate=settings.web_rate) as web:
                reader = WebReader(db, web, fetch_origins=settings.fetch_origins)
                try:
                    result = await reader.fetch_post(username, message_id)
                except WebError as exc:
                    raise CliError(f"https://t.me/{username}/{message_id}: "
                                   f"{redact(str(exc), settings.secrets())}") from None
    finally:
        await db.close()
    print(_summary(username, message_id, result), file=out)
    return EXIT_OK


async def _fetch(args: argparse.Namespace) -> int:
    return await fetch_link(settings_from_args(args), args.link, source=args.source)


COMMANDS = (
    Command("fetch", "archive one public post by its t.me link", _fetch, _fetch_arguments,
            "Archive one post (and its forward provenance) by its link: through the API when a user "
            "session is configured, else from its public web page (t.me/<channel>/<id>?embed=1)."),
)
