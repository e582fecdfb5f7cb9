"""This reader's share of the watched channels and its roles, kept by leases in the archive.

`LeaseKeeper` is how one `chanwatch run` takes part in `storage.leases` (docs/architecture.md,
"Several readers"): `claim()` — run at start and every third of the lease period — renews its
leases, hands back what exceeds its fair share and takes free or lapsed ones, and takes or renews the
'dispatcher' role when it may run the bot. Between claims, `mine(channel_id)` says whether this reader
may read a channel now: it holds the lease and the lease, counted from the claim that gave it, has not
lapsed by this reader's own clock. So a reader that cannot reach the archive stops reading its
channels within one period — before another reader may take them.

A single reader is the usual case: it holds every channel and the role, and nothing changes for it.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from datetime import datetime, timedelta

from bot.clock import Clock, utcnow
from storage import leases
from storage.database import Database
from storage.faults import explain

__all__ = ["LeaseKeeper", "default_reader_name"]

log = logging.getLogger("chanwatch.leases")


def default_reader_name() -> str:
    """A reader's name when CHANWATCH_READER is not set: this host and process (`host:pid`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseKeeper:
    """One reader's leases and roles: claimed in the archive, remembered here until they lapse."""

    def __init__(self, db: Database, name: str, period: timedelta, *, account_id: int | None = None,
                 wants_role: bool = False, now: Clock = utcnow, logger: logging.Logger = log) -> None:
        self.db = db
        self.name = name
        self.period = period
        self.account_id = account_id
        self.wants_role = wants_role  # it has a bot: it may be the dispatcher
        self.now = now
        self.log = logger
        self.held: frozenset[int] = frozenset()
        self._claimed_at: datetime | None = None  # the last claim tried (one that failed too)
        self._valid_until: datetime | None = None  # when what the last claim gave lapses
        self._role_until: datetime | None = None
        self._role_claimed = False  # the last claim gave (or renewed) the role
        self._announced: tuple[int, int] | None = None  # (held, readers) last logged

    async def claim(self) -> bool:
        """One claim round (and the role, when wanted); False when the archive could not be reached:
        what was held stays mine until it lapses."""
        at = self.now()
        self._claimed_at = at  # a failed claim is tried again a third of a period later, not per job
        try:
            claim, role = await self.db.transaction(self._claim, at)
        except sqlite3.Error as exc:
            self.log.warning("could not renew this reader's leases (%s): its channels are read until "
                             "the leases lapse", explain(exc, self.db.path, daemon=True))
            return False
        except Exception:  # never stops the daemon: the job that asked goes on with what it holds
            self.log.exception("could not renew this reader's leases; its channels are read until the "
                               "leases lapse")
            return False
        self.held = frozenset(claim.held)
        self._valid_until = at + self.period
        had_role, self._role_claimed = self._role_claimed, role
        self._role_until = at + self.period if role else None
        if claim.gained or claim.released or self._announced != (len(claim.held), claim.readers):
            self.log.info("reader %s: %d channels of %d reader(s)' share%s%s", self.name, len(claim.held),
                          claim.readers, f"; took {len(claim.gained)}" if claim.gained else "",
                          f"; handed back {len(claim.released)}" if claim.released else "")
            self._announced = (len(claim.held), claim.readers)
        if role != had_role and self.wants_role:
            self.log.info("reader %s %s the bot and the alert dispatcher", self.name,
                          "now runs" if role else "no longer runs")
        return True

    def _claim(self, conn: sqlite3.Connection, at: datetime) -> tuple[leases.Claim, bool]:
        claim = leases.claim(conn, self.name, self.account_id, at, self.period)
        role = self.wants_role and leases.take_role(conn, leases.DISPATCHER, self.name, at, self.period)
        return claim, role

    def due(self, claims_per_period: int) -> bool:
        """Whether the last claim is older than a `claims_per_period`th of the period (or none was
        made): a job about to read channels claims first, so it never reads on leases near lapsing."""
        return self._claimed_at is None or self.now() - self._claimed_at >= self.period / claims_per_period

    def mine(self, channel_id: int) -> bool:
        """Whether this reader may read `channel_id` now: held, and the lease not lapsed."""
        return (channel_id in self.held and self._valid_until is not None
                and self.now() < self._valid_until)

    def is_dispatcher(self) -> bool:
        """Whether this reader runs the bot and the alert dispatcher now (its role has not lapsed)."""
        return self._role_until is not None and self.now() < self._role_until

    async def release(self) -> None:
        """A clean stop: leases and roles freed at once, for the other readers' next claim."""
        self.held = frozenset()
        self._claimed_at = self._valid_until = self._role_until = None
        self._role_claimed = False
        try:
            await self.db.transaction(leases.release, self.name)
        except sqlite3.Error as exc:
            self.log.warning("could not release this reader's leases (%s): they lapse in %s",
                             explain(exc, self.db.path, daemon=True), self.period)
        except Exception as exc:  # the archive closed under it: the leases lapse on their own
            self.log.warning("could not release this reader's leases (%s: %s): they lapse in %s",
                             type(exc).__name__, exc, self.period)
