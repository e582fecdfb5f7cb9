"""`chanwatch serve`: the archive in a browser (bot/serve/: Datasette with chanwatch's plugin), read-only.

    chanwatch serve                          # http://127.0.0.1:8001/
    chanwatch serve --port 0                 # any free port; the address is printed
    CHANWATCH_WEB_TOKEN=... chanwatch serve --host 0.0.0.0

Bound to loopback by default. Any other address is refused (exit 2) unless CHANWATCH_WEB_TOKEN is set,
and then every request must carry the token. The archive is checked before anything listens (a missing,
damaged or newer archive is one line, exit 2) and then opened with SQLite's `mode=ro`: the daemon may go
on writing to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from bot.cli.common import EXIT_OK, CliError, Command, archive_path, environment, open_archive
from bot.config import media_dir_of, web_token_from
from bot.serve.app import build
from storage.location import ServerUrl

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8001


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine: localhost, 127.0.0.0/8, ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r} (0 to 65535; 0: any free port)")
    return value


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error (address in use, no such address)."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = found[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                       "(0: any free port) or --host") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server with our signal handling: Ctrl-C (or SIGTERM) stops it gracefully and the command
    exits 0. uvicorn's own handling re-raises the signal after its shutdown, which would end `serve` as
    an interrupted command (exit 130), or miss a Ctrl-C that came before it started."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        """The first signal: finish the requests in flight and stop; a second one: stop now."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def _serve(args: argparse.Namespace) -> int:
    env = environment(args)
    token = web_token_from(env)
    if token is None and not is_loopback(args.host):
        raise CliError(f"--host {args.host} can be reached from other machines: set CHANWATCH_WEB_TOKEN "
                       "(every request must then carry it) or serve on 127.0.0.1")
    path = archive_path(args)
    if isinstance(path, ServerUrl):
        raise CliError(f"serve shows an SQLite archive (Datasette reads SQLite files), not {path}; copy it "
                       "into a file with `chanwatch migrate-db URL archive.db` and serve that")
    with open_archive(path, readonly=True):
        pass  # a missing, damaged or newer archive is refused here, before anything listens
    raw_media = (env.get("CHANWATCH_MEDIA_DIR") or "").strip()
    media = media_dir_of(Path(raw_media).expanduser() if raw_media else None, path)
    datasette = build(path, media_dir=media, token=token)
    await datasette.invoke_startup()
    server = _Server(uvicorn.Config(datasette.app(), lifespan="off", log_level="warning", access_log=False,
                                    server_header=False))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    sock = _listen(args.host, args.port)
    address = _address(sock)
    print(f"chanwatch: serving {path} read-only at {address}", flush=True)
    if token is not None:
        print(f"chanwatch: open {address}?token=<CHANWATCH_WEB_TOKEN> once in a browser, or send "
              "Authorization: Bearer <CHANWATCH_WEB_TOKEN>", flush=True)
    print("chanwatch: Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return EXIT_OK


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="the address to listen on (default 127.0.0.1; any other needs "
                        "CHANWATCH_WEB_TOKEN)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"the port (default {DEFAULT_PORT}; 0: any free port, printed)")


COMMANDS = (
    Command("serve", "the archive in a browser: search, posts, channels, reports (read-only)", _serve,
            _serve_arguments,
            "Serve the archive read-only in a browser (Datasette with chanwatch's pages): search in the "
            "query language of `chanwatch search`, each post with its sightings, versions and charts, "
            "channels, the amplification report, and the archive's tables with facets and canned "
            "queries. Bound to 127.0.0.1; another --host needs CHANWATCH_WEB_TOKEN."),
)
