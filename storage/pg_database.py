"""The async archive on PostgreSQL: `storage.database.Database`'s calls over a psycopg connection pool.

SQLite's `Database` runs every storage function on aiosqlite's one worker thread, in order. A server
takes several connections at once, so here each `run` borrows a connection from a pool
(`psycopg_pool.ConnectionPool`, at most `POOL_SIZE`), wraps it as a `storage.pg.PgConnection` and
runs the function on one of as many worker threads: the daemon's poll, dispatcher and bot commands
no longer wait for each other's statements. Each `transaction` is still one transaction; the server
orders concurrent ones by their row locks, and ingests take one lock so they run one at a time
(`storage.ingest.INGEST_LOCK`, docs/architecture.md "Backends").

Opening migrates the schema first on a connection of its own, so a wrong URL, a refused password or
a newer schema fails in `open` with one line, never in the first job.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from psycopg_pool import ConnectionPool, PoolTimeout

from storage.faults import StorageError
from storage.location import ServerUrl
from storage.pg import SESSION, PgConnection

__all__ = ["POOL_SIZE", "PgPool"]

T = TypeVar("T")

POOL_SIZE = 4
"""Connections one process keeps to the server: the daemon's concurrent jobs (poll, live ingest,
dispatcher, a bot command) each get one; more would only queue on the server's locks."""
CONNECT_TIMEOUT_S = 30.0


def _configure(raw: Any) -> None:
    """Each new pooled connection gets the session every archive connection has (`storage.pg.SESSION`)."""
    raw.execute(SESSION)


class PgPool:
    """A pool of connections to one PostgreSQL archive, running storage functions on worker threads."""

    def __init__(self, url: ServerUrl, size: int = POOL_SIZE) -> None:
        self.url = url
        self.path = url.redacted  # what messages name (`explain(exc, db.path)`): never the password
        self._pool = ConnectionPool(url.url, min_size=1, max_size=size, open=False,
                                    kwargs={"autocommit": True}, configure=_configure, name="chanwatch")
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="chanwatch-pg")

    def open(self) -> None:
        """Open the pool and wait for its first connection (blocking: call it on a worker thread)."""
        self._pool.open()
        try:
            self._pool.wait(timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout:
            self._pool.close()
            raise StorageError(f"cannot connect to the PostgreSQL archive at {self.path} within "
                               f"{CONNECT_TIMEOUT_S:g} s", "cantopen") from None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` on a pooled connection (blocking: a worker thread runs it)."""
        with self._pool.connection() as raw:
            conn = PgConnection(raw, self.path)
            try:
                return fn(conn, *args)
            finally:
                if conn.in_transaction:  # a function that left a transaction open: never hand it on
                    try:
                        conn.rollback()
                    except sqlite3.Error:
                        pass

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` on a worker thread with a pooled connection."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(self.call, fn, *args))

    async def close(self) -> None:
        """Close the pool (calls in flight finish first: the threads are joined)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._threads.shutdown)
        await loop.run_in_executor(None, self._pool.close)
