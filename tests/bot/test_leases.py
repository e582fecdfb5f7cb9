"""bot.leases.LeaseKeeper: what one reader remembers of its claims, and how it behaves when the
archive cannot be reached."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.leases import LeaseKeeper
from storage.channels import upsert_channel
from storage.records import Channel, iso
from tests.storage.factories import T0

PERIOD = timedelta(seconds=60)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self):
        return self.t


async def test_a_claim_holds_until_it_lapses_by_the_readers_own_clock(db):
    await db.transaction(upsert_channel, Channel(100, "chan", "Chan", 1, watched=True), iso(T0))
    clock = Clock()
    keeper = LeaseKeeper(db, "r1", PERIOD, account_id=7, wants_role=True, now=clock)
    assert not keeper.mine(100) and keeper.due(3)
    assert await keeper.claim()
    assert keeper.mine(100) and keeper.is_dispatcher() and not keeper.due(3)
    clock.t += PERIOD / 3
    assert keeper.due(3) and keeper.mine(100)
    clock.t += PERIOD  # no claim for a whole period: nothing is this reader's any more
    assert not keeper.mine(100) and not keeper.is_dispatcher()


async def test_an_archive_out_of_reach_is_one_warning_a_third_of_a_period_and_what_was_held_lapses(
        db, caplog):
    await db.transaction(upsert_channel, Channel(100, "chan", "Chan", 1, watched=True), iso(T0))
    clock = Clock()
    keeper = LeaseKeeper(db, "r1", PERIOD, now=clock)
    assert await keeper.claim()
    await db.close()  # the archive is gone
    clock.t += PERIOD / 3
    with caplog.at_level(logging.WARNING, logger="chanwatch.leases"):
        assert not await keeper.claim()
        assert not keeper.due(3)  # the jobs asking meanwhile do not try again
        assert keeper.mine(100)  # held until the lease lapses
        clock.t += PERIOD
        assert not keeper.mine(100)
    assert len([r for r in caplog.records if r.name == "chanwatch.leases"]) == 1
