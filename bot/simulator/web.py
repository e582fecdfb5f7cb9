"""The World's public channels served as t.me web-preview pages, by a real HTTP/1.1 server.

`WebPreviewServer(world)` listens on 127.0.0.1 (a random port) with asyncio streams and answers as
t.me does: `/s/<name>` (the newest 20 messages, oldest first, an album kept whole, the load-more link
with `data-before`), `/s/<name>?before=N`, `?after=N`, `/<name>/<id>?embed=1`, and a 302 to `/<name>` for a
name with no public preview (unknown, private, a user, or listed in `no_preview`). The markup copies
the structure and class names of the real pages in tests/fixtures/real/web_preview/ (channel header
and counters, `tgme_widget_message` with `data-post`, text entities as HTML, "Forwarded from" with
its link, views as "1.2K", `time datetime`, "edited", albums, photos, videos, documents, polls,
replies, service messages). Connections are kept alive (HTTP/1.1).

Faults are hooks: `throttle(n, retry_after)` (429), `slow(n, seconds)` (the answer held that long in
loop time), `fail(n, status)` (500), `drop(n)` (the connection closed unanswered), `truncate(n)` (a
Content-Length larger than the body sent, then the connection closed), `change_markup(n)` (a page
whose class names changed). Faults fire in the order they were set, on any path. `requests` counts
requests per path, `log` each request with its time (the World's clock, or the `clock` given),
`connections` the TCP connections accepted; tests and benchmarks read them. `peer_ids` makes the
pages carry the channel's numeric id (`data-peer`) as live t.me pages do, for every channel or some.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import html
import math
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from telethon.tl import types

from .world import SimChannel, World

__all__ = ["PAGE_SIZE", "WebPreviewServer", "compact_count", "entities_html"]

PAGE_SIZE = 20
TME = "https://t.me"
W = "tgme_widget_message"  # the class prefix of everything in a post
_LINK_ATTRS = ' target="_blank" rel="noopener" onclick="return confirm(\'Open this link?\\n\\n\'+this.href);"'


@dataclass
class _Fault:
    kind: str  # "429", "slow", "status", "drop", "truncate", "markup"
    times: int
    value: Any = None


def compact_count(n: int) -> str:
    """A count as t.me shows it: 999, 1.2K (one decimal, cut not rounded), 109K, 1.5M."""
    for size, suffix in ((1_000_000, "M"), (1000, "K")):
        if n >= size:
            whole = n / size
            if whole >= 100:
                return f"{math.floor(whole)}{suffix}"
            return f"{math.floor(whole * 10) / 10:.1f}{suffix}"
    return str(n)


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _text_html(text: str) -> str:
    return _esc(text).replace("\n", "<br/>")


def _tags(entity: Any, text: str) -> tuple[str, str]:
    """The opening and closing HTML t.me writes for one entity covering `text`."""
    name = type(entity).__name__.removeprefix("MessageEntity")
    simple = {"Bold": "b", "Italic": "i", "Underline": "u", "Strike": "s", "Code": "code",
              "Spoiler": "tg-spoiler", "Blockquote": "blockquote"}
    if name in simple:
        return f"<{simple[name]}>", f"</{simple[name]}>"
    if name == "Pre":
        return "<pre>", "</pre>"
    if name == "Url":
        url = text if "://" in text else f"http://{text}"
        return f'<a href="{_esc(url)}"{_LINK_ATTRS}>', "</a>"
    if name == "TextUrl":
        return f'<a href="{_esc(entity.url)}"{_LINK_ATTRS}>', "</a>"
    if name == "Mention":
        return f'<a href="{TME}/{_esc(text.lstrip("@"))}" target="_blank">', "</a>"
    if name in ("Hashtag", "Cashtag"):
        return f'<a href="?q={urllib.parse.quote(text)}">', "</a>"
    if name == "Email":
        return f'<a href="mailto:{_esc(text)}">', "</a>"
    if name == "Phone":
        return f'<a href="tel:{_esc(text)}">', "</a>"
    return "", ""  # bot commands, custom emoji, mention names: plain text on t.me


def entities_html(text: str, entities: Sequence[Any] | None) -> str:
    """`text` with its Telegram entities (UTF-16 offsets) as the HTML of a t.me message text."""
    units = text.encode("utf-16-le")
    spans = sorted(((e.offset, e.offset + e.length, i, e) for i, e in enumerate(entities or [])
                    if e.length > 0), key=lambda s: (s[0], -s[1], s[2]))
    cuts = sorted({0, len(units) // 2} | {s[0] for s in spans} | {s[1] for s in spans})
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (end, closing tag) of the open entities
    pending = list(spans)
    for a, b in zip(cuts, cuts[1:], strict=False):
        while stack and stack[-1][0] <= a:
            out.append(stack.pop()[1])
        while pending and pending[0][0] == a:
            start, end, _, entity = pending.pop(0)
            end = min(end, stack[-1][0]) if stack else end  # clip an overlapping entity into its parent
            piece = units[2 * start:2 * end].decode("utf-16-le", errors="replace")
            opening, closing = _tags(entity, piece)
            out.append(opening)
            stack.append((end, closing))
        out.append(_text_html(units[2 * a:2 * b].decode("utf-16-le", errors="replace")))
    while stack:
        out.append(stack.pop()[1])
    return "".join(out)


class WebPreviewServer:
    """A real HTTP server on 127.0.0.1 serving `world`'s public channels as t.me's web preview.

        async with WebPreviewServer(world) as server:
            async with WebClient(server.url) as web: ...
    """

    def __init__(self, world: World, *, no_preview: Sequence[str] = (),
                 clock: Callable[[], dt.datetime] | None = None,
                 peer_ids: bool | Sequence[str] = False) -> None:
        self.world = world
        #: Whose posts carry the channel's numeric id (`data-peer="c<id>_<hash>"`, as live t.me pages
        #: do; a browser-saved page has none): every channel's (True), none (False), or these names'.
        self.peer_ids = peer_ids if isinstance(peer_ids, bool) else {n.lower() for n in peer_ids}
        self._clock = clock or (lambda: world.now)
        self.no_preview = {n.lower() for n in no_preview}
        #: Requests answered (faults included), per path without the query.
        self.requests: collections.Counter[str] = collections.Counter()
        #: Every request received, in order: (when, by `clock`, default the World's; the target with
        #: its query).
        self.log: list[tuple[dt.datetime, str]] = []
        #: TCP connections accepted.
        self.connections = 0
        #: User-Agent headers received.
        self.user_agents: list[str] = []
        self._faults: list[_Fault] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()
        self.held = asyncio.Event()  # set while a slow answer is being held
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to give `WebClient` (CHANWATCH_WEB_URL)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> WebPreviewServer:
        """Listen on a random port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        # Handlers are ended by closing their connections, not cancelled: asyncio's stream server
        # logs a cancelled handler as an error.
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> WebPreviewServer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- faults ------------------------------------------------------------------------------------

    def throttle(self, times: int = 1, retry_after: str | int | None = 5) -> None:
        """The next `times` requests answer 429 with this `Retry-After` (seconds, an HTTP date, None)."""
        self._faults.append(_Fault("429", times, retry_after))

    def slow(self, times: int = 1, seconds: float = 3600) -> None:
        """The next `times` requests are held `seconds` of loop time before their answer."""
        self._faults.append(_Fault("slow", times, seconds))

    def fail(self, times: int = 1, status: int = 500) -> None:
        """The next `times` requests answer `status` (500 by default)."""
        self._faults.append(_Fault("status", times, status))

    def drop(self, times: int = 1) -> None:
        """The next `times` requests get no answer: the connection is closed at once."""
        self._faults.append(_Fault("drop", times))

    def truncate(self, times: int = 1) -> None:
        """The next `times` answers promise more bytes than they send, then close the connection."""
        self._faults.append(_Fault("truncate", times))

    def change_markup(self, times: int = 1) -> None:
        """The next `times` pages come with t.me's class names changed (a redesign the parser misses)."""
        self._faults.append(_Fault("markup", times))

    def _take_fault(self) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0:
                fault.times -= 1
                return fault
        return None

    # -- HTTP --------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                self.user_agents.append(headers.get("user-agent", ""))
                keep = await self._answer(writer, method, target)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _answer(self, writer: asyncio.StreamWriter, method: str, target: str) -> bool:
        """Write one answer; False when the connection must close after it."""
        parsed = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        self.requests[parsed.path] += 1
        self.log.append((self._clock(), target))
        fault = self._take_fault()
        extra: dict[str, str] = {}
        if fault is not None and fault.kind == "slow":
            self.held.set()
            try:
                await asyncio.wait_for(self._closing.wait(), fault.value)
            except TimeoutError:
                pass
            finally:
                self.held.clear()
            if self._closing.is_set():
                return False
            fault = None
        if fault is not None and fault.kind == "drop":
            return False
        if fault is not None and fault.kind == "429":
            if fault.value is not None:
                extra["Retry-After"] = str(fault.value)
            return await self._send(writer, 429, "Too Many Requests", b"Too Many Requests", extra)
        if fault is not None and fault.kind == "status":
            return await self._send(writer, fault.value, "Internal Server Error", b"Internal Server Error")
        if method != "GET":
            return await self._send(writer, 405, "Method Not Allowed", b"")
        status, body, location = self.page(parsed.path, query)
        if location is not None:
            extra["Location"] = location
        if fault is not None and fault.kind == "markup":
            body = body.replace("tgme_widget_message", "tgme_post").replace("data-post", "data-item")
        data = body.encode()
        if fault is not None and fault.kind == "truncate":
            head = self._head(status, "OK", len(data) + 4096, extra)
            writer.write(head + data[: len(data) // 2])
            await writer.drain()
            return False
        reason = {200: "OK", 302: "Found", 404: "Not Found"}.get(status, "OK")
        return await self._send(writer, status, reason, data, extra)

    @staticmethod
    def _head(status: int, reason: str, length: int, extra: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/html; charset=utf-8",
                 f"Content-Length: {length}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, writer: asyncio.StreamWriter, status: int, reason: str, data: bytes,
                    extra: dict[str, str] | None = None) -> bool:
        writer.write(self._head(status, reason, len(data), extra or {}) + data)
        await writer.drain()
        return True

    # -- pages -------------------------------------------------------------------------------------

    def page(self, path: str, query: dict[str, str]) -> tuple[int, str, str | None]:
        """(status, HTML, Location) for a path, as t.me answers it."""
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "s":
            channel = self._public(parts[1])
            if channel is None:
                return 302, "", f"/{parts[1]}"
            before = int(query["before"]) if query.get("before", "").isdigit() else None
            after = int(query["after"]) if query.get("after", "").isdigit() else None
            return 200, self.channel_page(channel, before, after), None
        if len(parts) == 2 and parts[1].isdigit() and query.get("embed") == "1":
            channel = self._public(parts[0])
            if channel is None:
                return 200, _embed_error(), None
            return 200, self.embed_page(channel, int(parts[1])), None
        if len(parts) == 1:
            return 200, _contact_page(parts[0]), None
        return 404, "<html><body>Not Found</body></html>", None

    def _public(self, name: str) -> SimChannel | None:
        found = self.world.resolve(name)
        if not isinstance(found, SimChannel) or found.private or name.lower() in self.no_preview:
            return None
        return found

    def channel_page(self, channel: SimChannel, before: int | None = None, after: int | None = None) -> str:
        """`/s/<name>[?before=N]`: up to PAGE_SIZE messages below `before` (the newest ones), oldest
        first; `?after=N`: the PAGE_SIZE messages just above N."""
        below = sorted((i for i in channel.messages if before is None or i < before), reverse=True)
        if after is not None:
            ids = sorted(i for i in below if i > after)[:PAGE_SIZE][::-1]
        else:
            ids = below[:PAGE_SIZE]
        if ids:  # keep an album whole at the page's lower edge
            lowest = channel.messages[ids[-1]]
            group = getattr(lowest, "grouped_id", None)
            if group:
                ids += [i for i, m in channel.messages.items()
                        if i < ids[-1] and getattr(m, "grouped_id", None) == group]
        ids.sort()
        widgets = "".join(self._widget(channel, members) for members in _group(channel, ids))
        more = ""
        if ids and any(i < ids[0] for i in channel.messages):
            more = (f'<div class="tgme_widget_message_centered js-messages_more_wrap"><a href="/s/'
                    f'{channel.username}?before={ids[0]}" class="tme_messages_more js-messages_more" '
                    f'data-before="{ids[0]}"></a></div>')
        newer = ""
        if ids and any(i > ids[-1] for i in channel.messages):
            newer = (f'<div class="tgme_widget_message_centered js-messages_more_wrap"><a href="/s/'
                     f'{channel.username}?after={ids[-1]}" class="tme_messages_more js-messages_more" '
                     f'data-after="{ids[-1]}"></a></div>')
        return _CHANNEL_PAGE.format(
            title=_esc(channel.title), username=channel.username, header=self._header(channel),
            messages=more + widgets + newer)

    def embed_page(self, channel: SimChannel, message_id: int) -> str:
        """`/<name>/<id>?embed=1`: one post (its whole album), or t.me's "Post not found"."""
        msg = channel.messages.get(message_id)
        if msg is None:
            return _embed_error()
        members = [message_id]
        group = getattr(msg, "grouped_id", None)
        if group:
            members = sorted(i for i, m in channel.messages.items()
                             if getattr(m, "grouped_id", None) == group)
        widget = self._widget(channel, members, embed=True)
        return _EMBED_PAGE.format(title=_esc(channel.title), widget=widget)

    def _header(self, channel: SimChannel) -> str:
        counters = [(len(channel.members), "subscriber")]
        photos = sum(isinstance(m.media, types.MessageMediaPhoto) for m in channel.messages.values()
                     if isinstance(m, types.Message))
        if photos:
            counters.append((photos, "photo"))
        shown = "".join(
            f'<div class="tgme_channel_info_counter"><span class="counter_value">{compact_count(n)}</span> '
            f'<span class="counter_type">{kind}{"" if n == 1 else "s"}</span></div>' for n, kind in counters)
        about = (f'<div class="tgme_channel_info_description">{_text_html(channel.about)}</div>'
                 if channel.about else "")
        return _HEADER.format(title=_esc(channel.title), username=channel.username, counters=shown,
                              about=about)

    def _widget(self, channel: SimChannel, members: list[int], *, embed: bool = False) -> str:
        """One `tgme_widget_message`: a message, or an album of `members` (its first id is the post)."""
        msgs = [channel.messages[i] for i in members]
        first = msgs[0]
        post = f"{channel.username}/{first.id}"
        link = f"{TME}/{post}"
        if isinstance(first, types.MessageService):
            return _wrap(post, "service_message", _owner(channel)
                         + f'<div class="tgme_widget_message_text js-message_text" dir="auto">'
                         f'{_esc(_service_text(first))}</div>' + _footer(first, link, views=False), embed,
                         self._peer(channel))
        body = [_owner(channel)]
        if first.fwd_from is not None:
            body.append(self._forwarded(first.fwd_from))
        reply_id = getattr(first.reply_to, "reply_to_msg_id", None) if first.reply_to else None
        if reply_id:
            body.append(self._reply(channel, reply_id))
        if len(msgs) > 1:
            body.append(self._album(channel, msgs))
        elif first.media is not None:
            body.append(self._media(channel, first.media, link, first.id))
        captioned = next((m for m in msgs if m.message), None)
        if captioned is not None:
            body.append(f'<div class="tgme_widget_message_text js-message_text" dir="auto">'
                        f'{entities_html(captioned.message, captioned.entities)}</div>')
        body.append(_footer(first, link, views=True))
        return _wrap(post, "", "".join(body), embed, self._peer(channel))

    def _peer(self, channel: SimChannel) -> str | None:
        """The `data-peer` of the channel's posts, when its pages carry its id (`peer_ids`)."""
        if isinstance(self.peer_ids, bool):
            shown = self.peer_ids
        else:
            shown = (channel.username or "").lower() in self.peer_ids
        return f"c{channel.id}_{channel.access_hash}" if shown else None

    def _forwarded(self, fwd: types.MessageFwdHeader) -> str:
        origin = None
        if isinstance(fwd.from_id, types.PeerChannel):
            origin = self.world.channels.get(fwd.from_id.channel_id)
        elif isinstance(fwd.from_id, types.PeerUser):
            origin = self.world.users.get(fwd.from_id.user_id)
        name = fwd.from_name or (getattr(origin, "title", None) or
                                 " ".join(filter(None, [getattr(origin, "first_name", ""),
                                                        getattr(origin, "last_name", "")]))) or "Unknown"
        username = getattr(origin, "username", None)
        if username and isinstance(origin, SimChannel) and not origin.private and fwd.channel_post:
            inner = (f'<a class="tgme_widget_message_forwarded_from_name" href="{TME}/{username}/'
                     f'{fwd.channel_post}"><span dir="auto">{_esc(name)}</span></a>')
        elif username:
            inner = (f'<a class="tgme_widget_message_forwarded_from_name" href="{TME}/{username}">'
                     f'<span dir="auto">{_esc(name)}</span></a>')
        else:
            inner = f'<span class="tgme_widget_message_forwarded_from_name" dir="auto">{_esc(name)}</span>'
        return f'<div class="{W}_forwarded_from accent_color">Forwarded from&nbsp;{inner}</div>'

    def _reply(self, channel: SimChannel, reply_id: int) -> str:
        target = channel.messages.get(reply_id)
        excerpt = (_esc((getattr(target, "message", "") or "")[:100]) if target is not None
                   else "Deleted message")
        return (f'<a class="tgme_widget_message_reply" href="{TME}/{channel.username}/{reply_id}">'
                f'<div class="{W}_author accent_color"><span class="{W}_author_name"'
                f' dir="auto">{_esc(channel.title)}</span></div>'
                f'<div class="tgme_widget_message_text" dir="auto">{excerpt}</div></a>')

    def _album(self, channel: SimChannel, msgs: list[types.Message]) -> str:
        parts = []
        for m in msgs:
            href = f"{TME}/{channel.username}/{m.id}?single"
            if _video(m.media) is not None:
                parts.append(self._video(channel, m.media, href, m.id, grouped=True))
            else:
                parts.append(f'<a class="{W}_photo_wrap grouped_media_wrap blured js-message_photo" '
                             f"style=\"width:226px;height:127px;"
                             f"background-image:url('{self._file_url(channel, m.id)}')\" "
                             f'data-ratio="1" href="{href}"><div class="grouped_media_helper">'
                             f'<div class="tgme_widget_message_photo grouped_media"></div></div></a>')
        return ('<div class="tgme_widget_message_grouped_wrap js-message_grouped_wrap" data-margin-w="2" '
                'data-margin-h="2" style="width:453px;">'
                f'<div class="{W}_grouped js-message_grouped">'
                '<div class="tgme_widget_message_grouped_layer js-message_grouped_layer">'
                + "".join(parts) + "</div></div></div>")

    def _file_url(self, channel: SimChannel, message_id: int) -> str:
        """The preview image's URL (t.me's point at its CDN; nothing is served here: the web reader
        stores the URL, never the file)."""
        return f"{self.url}/file/{channel.username}/{message_id}.jpg"

    def _video(self, channel: SimChannel, media: Any, href: str, message_id: int, *,
               grouped: bool = False) -> str:
        attr = _video(media)
        duration = _duration(getattr(attr, "duration", 0) or 0)
        cls = "grouped_media_wrap blured " if grouped else ""
        return (f'<a class="tgme_widget_message_video_player {cls}js-message_video_player" href="{href}">'
                f"<i class=\"tgme_widget_message_video_thumb\" style=\"background-image:url('"
                f"{self._file_url(channel, message_id)}')\"></i>"
                f'<div class="tgme_widget_message_video_wrap" style="width:{getattr(attr, "w", 1280)}px">'
                f'<video src="{self.url}/file/{channel.username}/{message_id}.mp4" '
                f'class="{W}_video js-message_video" '
                f'width="100%" height="100%"></video></div>'
                f'<div class="message_video_play js-message_video_play">'
                f'</div><time class="message_video_duration js-message_video_duration">{duration}</time></a>')

    def _media(self, channel: SimChannel, media: Any, link: str, message_id: int) -> str:
        if isinstance(media, types.MessageMediaPhoto):
            return (f'<a class="tgme_widget_message_photo_wrap" href="{link}" style="width:800px;'
                    f"background-image:url('{self._file_url(channel, message_id)}')\">"
                    f'<div class="tgme_widget_message_photo" style="padding-top:56.25%"></div></a>')
        if isinstance(media, types.MessageMediaDocument) and _video(media) is not None:
            return self._video(channel, media, link, message_id)
        if isinstance(media, types.MessageMediaDocument) and media.document is not None:
            doc = media.document
            name = next((a.file_name for a in doc.attributes
                         if isinstance(a, types.DocumentAttributeFilename)), "file")
            return (f'<a class="tgme_widget_message_document_wrap" href="{link}"><div class="tgme_widget_'
                    f'message_document_icon accent_bg"></div><div class="tgme_widget_message_document">'
                    f'<div class="{W}_document_title accent_color" dir="auto">{_esc(name)}</div>'
                    f'<div class="tgme_widget_message_document_extra" dir="auto">{_size_text(doc.size)}</div>'
                    f'</div></a>')
        if isinstance(media, types.MessageMediaPoll):
            return _poll(media, link)
        if isinstance(media, types.MessageMediaWebPage) and isinstance(media.webpage, types.WebPage):
            page = media.webpage
            return (f'<a class="tgme_widget_message_link_preview" href="{_esc(page.url)}">'
                    f'<div class="link_preview_site_name accent_color" dir="auto">'
                    f'{_esc(page.site_name or "")}</div>'
                    f'<div class="link_preview_title" dir="auto">{_esc(page.title or "")}</div>'
                    f'<div class="link_preview_description" dir="auto">{_esc(page.description or "")}</div>'
                    '</a>')
        return ('<div class="message_media_not_supported_wrap"><div class="message_media_not_supported">'
                '<div class="message_media_not_supported_label">Please open Telegram to view this post</div>'
                f'<a href="{link}" class="message_media_view_in_telegram">VIEW IN TELEGRAM</a></div></div>')


def _video(media: Any) -> Any:
    doc = getattr(media, "document", None)
    for attr in getattr(doc, "attributes", None) or []:
        if isinstance(attr, types.DocumentAttributeVideo):
            return attr
    return None


def _group(channel: SimChannel, ids: list[int]) -> list[list[int]]:
    """Ids (ascending) gathered into widgets: an album's parts share one."""
    out: list[list[int]] = []
    seen: dict[int, list[int]] = {}
    for i in ids:
        group = getattr(channel.messages[i], "grouped_id", None)
        if group and group in seen:
            seen[group].append(i)
            continue
        out.append([i])
        if group:
            seen[group] = out[-1]
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else getattr(value, "text", "")


def _poll(media: types.MessageMediaPoll, link: str) -> str:
    poll = media.poll
    counts = {r.option: r.voters for r in (getattr(media.results, "results", None) or [])}
    total = sum(counts.values())
    options = "".join(
        f'<div class="tgme_widget_message_poll_option"><div class="tgme_widget_message_poll_option_percent">'
        f'{round(100 * counts.get(a.option, 0) / total) if total else 0}%</div>'
        f'<div class="{W}_poll_option_value"><div class="{W}_poll_option_text">'
        f'{_esc(_text(a.text))}</div><div class="{W}_poll_option_bar accent_bg"></div></div></div>'
        for a in poll.answers)
    return (f'<div class="tgme_widget_message_poll js-poll"><div class="tgme_widget_message_poll_question">'
            f'{_esc(_text(poll.question))}</div><div class="{W}_poll_type">Anonymous Poll</div>'
            f'<a class="tgme_widget_message_poll_options" href="{link}">{options}</a></div>')


def _service_text(msg: types.MessageService) -> str:
    action = type(msg.action).__name__.removeprefix("MessageAction")
    shown = {"ChannelCreate": "Channel created", "ChatEditPhoto": "Channel photo updated",
             "ChatEditTitle": "Channel name was changed", "PinMessage": "pinned a message"}
    return shown.get(action, "Service message")


def _owner(channel: SimChannel) -> str:
    return (f'<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" '
            f'href="{TME}/{channel.username}"><span dir="auto">{_esc(channel.title)}</span></a></div>')


def _footer(msg: Any, link: str, *, views: bool) -> str:
    date: dt.datetime = msg.date.astimezone(dt.UTC)
    shown_views = ""
    if views and getattr(msg, "views", None) is not None:
        shown_views = (f'<span class="tgme_widget_message_views">{compact_count(msg.views)}</span>'
                       f'<span class="copyonly"> views</span>')
    author = ""
    if getattr(msg, "post_author", None):
        author = f'<span class="{W}_from_author" dir="auto">{_esc(msg.post_author)}</span>&nbsp;'
    edited = ("edited &nbsp;" if getattr(msg, "edit_date", None) and not getattr(msg, "edit_hide", False)
              else "")
    return (f'<div class="tgme_widget_message_footer compact js-message_footer">'
            f'<div class="tgme_widget_message_info short js-message_info">{shown_views}'
            f'<span class="tgme_widget_message_meta">{author}{edited}<a class="tgme_widget_message_date" '
            f'href="{link}"><time datetime="{date.isoformat()}" class="time">{date:%H:%M}</time></a></span>'
            f'</div></div>')


def _wrap(post: str, extra_class: str, bubble: str, embed: bool, peer: str | None = None) -> str:
    classes = " ".join(filter(None, ["tgme_widget_message", "text_not_supported_wrap", extra_class,
                                     "js-widget_message"]))
    peer_attr = f' data-peer="{peer}"' if peer else ""
    widget = (f'<div class="{classes}" data-post="{post}"{peer_attr}><div class="tgme_widget_message_bubble">'
              f'{bubble}</div></div>')
    return widget if embed else f'<div class="tgme_widget_message_wrap js-widget_message_wrap">{widget}</div>'


def _embed_error() -> str:
    return _EMBED_PAGE.format(title="Telegram", widget=f'<div class="{W}_error">Post not found</div>')


def _contact_page(name: str) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Telegram: Contact @'
            f'{_esc(name)}</title></head><body><div class="tgme_page"><div class="tgme_page_title">'
            f'{_esc(name)}</div></div></body></html>')


_HEADER = """<header class="tgme_header search_collapsed"><div class="tgme_container">
<div class="tgme_header_right_column"><section class="tgme_right_column"><div class="tgme_channel_info">
<div class="tgme_channel_info_header"><div class="tgme_channel_info_header_title_wrap">
<div class="tgme_channel_info_header_title"><span dir="auto">{title}</span></div></div>
<div class="tgme_channel_info_header_username"><a href="https://t.me/{username}">@{username}</a></div></div>
<div class="tgme_channel_info_counters">{counters}</div>
{about}</div></section></div></div></header>"""

_CHANNEL_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{title} – Telegram</title>
    <meta property="og:title" content="{title}">
    <link rel="canonical" href="/s/{username}">
  </head>
  <body class="widget_frame_base tgme_webpreview emoji_image thin_box_shadow tme_mode no_transitions">
{header}
<main class="tgme_main" data-url="/{username}">
  <div class="tgme_container">
    <section class="tgme_channel_history js-message_history">
{messages}
    </section>
  </div>
</main>
  </body>
</html>
"""

_EMBED_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{title} – Telegram</title>
    <meta name="robots" content="noindex, nofollow" />
  </head>
  <body class="widget_frame_base tgme_widget body_widget_post emoji_image nodark">
{widget}
  </body>
</html>
"""
