"""Servers on 127.0.0.1 that are not Telegram, for the start-up and reconnection tests: one answers
every connection as an HTTP proxy would (and closes), one accepts and never answers."""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

HTTP_ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass
class NotTelegram:
    """A running server: where it listens and how many connections it has accepted."""

    host: str
    port: int
    connections: int = 0


@asynccontextmanager
async def not_telegram(kind: str = "http") -> AsyncIterator[NotTelegram]:
    """`http`: answer each connection's first bytes with an HTTP error and close it (a proxy or a
    captive portal); `silent`: accept and hold connections without a byte."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        if kind == "silent":
            held.append(writer)
            return
        try:
            await reader.read(64)
            writer.write(HTTP_ANSWER)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    info = NotTelegram("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        yield info
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@contextmanager
def not_telegram_thread() -> Iterator[NotTelegram]:
    """The `http` server on a thread of its own, for tests that call the synchronous `main()`."""
    info = NotTelegram("127.0.0.1", 0)

    class Answer(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            info.connections += 1
            try:
                self.request.recv(64)
                self.request.sendall(HTTP_ANSWER)
            except OSError:
                pass

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Answer) as server:
        info.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield info
        finally:
            server.shutdown()
            thread.join()
