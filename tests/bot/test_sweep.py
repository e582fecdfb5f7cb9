"""The slow deletion sweep (bot/sweep.py) and deletion intervals, on the simulator: older messages
re-checked by id within a budget, channels in turn, rounds restarting at the top, flood waits ending
a run, failing channels skipped; the recorded interval holds the true moment of deletion."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta

import pytest

from bot.config import ConfigError, load_settings
from bot.resolve import resolve_channels
from bot.service import Service
from bot.sweep import Sweeper
from tests.bot.conftest import FakeSleep
from tests.bot.test_poller import channel_row, fill, make_poller, rows
from tests.bot.test_service import paused_scheduler, settings_for

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


async def archived(world, reader, db, n: int, *names: str):
    """Channels with `n` posts each, all stored by one poll (at most 100: the newest page)."""
    chans = [world.add_channel(name, name.title()) for name in names]
    for ch in chans:
        fill(world, ch, n)
    await resolve_channels(db, reader, list(names))
    poller = make_poller(db, reader, world)
    await poller.poll_once()
    return chans, poller


def sweeper(db, reader, world, per_hour: int = 120, **kw) -> Sweeper:
    """Window: the newest 10 ids only (none by date), so most of the archive is the sweep's."""
    return Sweeper(db, reader, per_hour, window_ids=10, window_days=0, now=lambda: world.now,
                   sleep=FakeSleep(), **kw)


def message(db, ch, message_id: int) -> sqlite3.Row:
    return rows(db.path, "SELECT * FROM messages WHERE channel_id = ? AND message_id = ?",
                ch.id, message_id)[0]


async def test_the_sweep_finds_an_old_deletion_whose_interval_holds_the_true_moment(world, reader, db):
    [ch], _ = await archived(world, reader, db, 60, "oldnews")
    seen_before = world.advance(3600)
    world.delete(ch, 5)
    world.advance(7200)
    world.edit(ch, 7, "post 7, corrected")
    world.reset_requests()
    report = await sweeper(db, reader, world).run_once(budget=1)
    assert world.requests["channels.GetMessages"] == 1
    assert (report.checked, report.deleted, report.edited) == (50, 1, 1)  # ids 1..50, below the window
    gone = message(db, ch, 5)
    assert gone["deleted_via"] == "sweep"
    assert gone["last_seen"] <= ch.deleted_at[5].isoformat() <= gone["deleted_at"]
    assert gone["last_seen"] < seen_before.isoformat() < gone["deleted_at"]
    assert message(db, ch, 6)["last_seen"] == world.now.isoformat()  # present: last_seen moved
    [version] = rows(db.path, "SELECT message_id, text FROM message_versions")
    assert tuple(version) == (7, "post oldnews 7")


async def test_the_recheck_records_an_interval_holding_the_true_moment(world, reader, db):
    [ch], poller = await archived(world, reader, db, 5, "recent")
    world.advance(600)
    world.delete(ch, 3)
    world.advance(600)
    await poller.recheck_once()
    gone = message(db, ch, 3)
    assert gone["deleted_via"] == "recheck"
    assert gone["last_seen"] <= ch.deleted_at[3].isoformat() <= gone["deleted_at"] == world.now.isoformat()
    assert message(db, ch, 4)["last_seen"] == world.now.isoformat()  # unchanged, yet seen present


async def test_channels_take_turns_and_a_run_spends_exactly_its_budget(world, reader, db):
    chans, _ = await archived(world, reader, db, 100, "first", "second")
    s = sweeper(db, reader, world)
    await s.run_once(budget=1)  # ids 1..90 lie below each window: one request sweeps a channel
    assert [channel_row(db, c.id)["sweep_before"] for c in chans] == [1, None]
    await s.run_once(budget=1)  # the next run starts with the next channel
    assert [channel_row(db, c.id)["sweep_before"] for c in chans] == [1, 1]
    world.reset_requests()
    report = await s.run_once(budget=3)  # round the channels again until the budget is spent
    assert report.requests == 3 == world.requests["channels.GetMessages"]
    assert report.checked == 270


async def test_the_hours_budget_is_spread_over_the_runs(world, reader, db):
    await archived(world, reader, db, 100, "budget")
    s = sweeper(db, reader, world, per_hour=30, every=300)  # 2.5 requests a run
    assert [s.share() for _ in range(2)] == [2, 5]  # fractions carry; unspent credit is kept
    assert sweeper(db, reader, world, per_hour=0).share() == 0  # 0 turns it off
    world.reset_requests()
    assert (await sweeper(db, reader, world, per_hour=0).run_once()).requests == 0
    assert world.requests["channels.GetMessages"] == 0


async def test_a_round_restarts_at_the_top_once_it_reached_the_bottom(world, reader, db):
    [ch], _ = await archived(world, reader, db, 30, "rounds")
    s = sweeper(db, reader, world)
    await s.run_once(budget=1)  # ids 1..20: the whole range below the window
    first = channel_row(db, ch.id)
    assert first["sweep_before"] == 1 and first["sweep_started"] == world.now.isoformat()
    world.advance(3600)
    world.delete(ch, 20)
    await s.run_once(budget=1)
    again = channel_row(db, ch.id)
    assert again["sweep_started"] == world.now.isoformat() != first["sweep_started"]
    assert message(db, ch, 20)["deleted_via"] == "sweep"


async def test_a_flood_wait_ends_the_run_and_the_next_run_waits_for_it(world, reader, db):
    await archived(world, reader, db, 100, "floody", "other")
    world.inject_flood("channels.GetMessages", 600)
    s = sweeper(db, reader, world)
    world.reset_requests()
    report = await s.run_once(budget=5)
    assert report.stopped and report.requests == 1
    assert (await s.run_once(budget=5)).requests == 0  # before the wait is over: nothing sent
    assert world.requests["channels.GetMessages"] == 1
    world.advance(601)
    assert (await s.run_once(budget=2)).requests == 2


async def test_a_failing_channel_is_skipped_and_logged_and_the_others_go_on(world, reader, db, caplog):
    (gone, fine), _ = await archived(world, reader, db, 100, "privy", "fine")
    world.make_private(gone)
    caplog.set_level(logging.WARNING, logger="chanwatch.sweep")
    report = await sweeper(db, reader, world).run_once(budget=3)
    assert report.failed == (gone.id,)
    assert channel_row(db, fine.id)["sweep_before"] == 1
    assert "sweep @privy" in caplog.text


async def test_the_daemon_runs_the_sweep_every_five_minutes_unless_its_budget_is_zero(
        world, reader, bot_client, db, tmp_path):
    for per_hour, expected in ((120, timedelta(seconds=5)), (0, None)):
        settings = settings_for(tmp_path, sweep_per_hour=per_hour)
        service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler(), time_scale=60)
        await service.start()
        job = service.scheduler.get_job("sweep")
        assert (job.trigger.interval if job else None) == expected
        await service.stop()


def test_the_sweep_budget_is_read_from_the_environment_with_a_safe_default(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    assert load_settings(env_file=empty, environ={}).sweep_per_hour == 120
    assert load_settings(env_file=empty, environ={"CHANWATCH_SWEEP_PER_HOUR": "0"}).sweep_per_hour == 0
    with pytest.raises(ConfigError, match="CHANWATCH_SWEEP_PER_HOUR"):
        load_settings(env_file=empty, environ={"CHANWATCH_SWEEP_PER_HOUR": "-1"})
