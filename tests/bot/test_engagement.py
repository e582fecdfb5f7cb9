"""The engagement job against the simulator: readings on the widening schedule, batched requests,
never an edit, deletions and the horizon, a failing channel, the daemon's job and its setting."""

from __future__ import annotations

import json
import logging
import math
from datetime import timedelta

import pytest
from telethon.tl import functions

from bot.config import ConfigError, load_settings
from bot.engagement import Engagement
from bot.resolve import resolve_channels
from bot.service import Service
from bot.simulator.engagement import Growth
from storage.engagement import SCHEDULE
from storage.records import parse_iso
from tests.bot.test_fault_injection import set_disk_full
from tests.bot.test_poller import fill, make_poller, rows
from tests.bot.test_service import paused_scheduler, settings_for

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

GROWTH = Growth(ceiling=10_000, half_life=timedelta(hours=6), views_per_reaction=100)


async def archived(world, reader, db, username: str, n: int):
    """A watched channel whose `n` posts (one a minute) the poller archived: their first readings."""
    ch = world.add_channel(username, username.title())
    world.post(ch, "first")
    await resolve_channels(db, reader, [username])
    poller = make_poller(db, reader, world)
    await poller.poll_once()
    fill(world, ch, n - 1)
    await poller.poll_once()
    return ch, poller


def job(world, reader, db, **kwargs) -> Engagement:
    return Engagement(db, reader, now=lambda: world.now, **kwargs)


def readings(db, channel_id: int, message_id: int) -> list:
    return rows(db.path, "SELECT at, views, reactions FROM message_stats"
                         " WHERE channel_id = ? AND message_id = ? ORDER BY at", channel_id, message_id)


async def step(world, engagement: Engagement, ch, hours: float) -> None:
    """Let World time pass hour by hour, the posts gathering views, a round each hour."""
    for _ in range(int(hours)):
        world.advance(hours=1)
        world.grow_engagement(ch, GROWTH)
        await engagement.run_once()


async def test_readings_follow_the_widening_schedule_as_time_passes(world, reader, db):
    ch, _ = await archived(world, reader, db, "growing", 2)
    engagement = job(world, reader, db)
    await step(world, engagement, ch, 15 * 24)
    for message_id in (1, 2):
        posted = ch.messages[message_id].date
        got = readings(db, ch.id, message_id)
        ages = [parse_iso(r["at"]) - posted for r in got]
        assert len(got) == 1 + len(SCHEDULE)  # the first sight, then each point once
        for age, point in zip(ages[1:], SCHEDULE, strict=True):
            assert point <= age < point + timedelta(hours=1)  # read in the first round after the point
        views = [r["views"] for r in got]
        assert views == sorted(views) and views[-1] > views[1]
        assert json.loads(got[-1]["reactions"]) == {"👍": views[-1] // 100}
    [due] = rows(db.path, "SELECT stats_due FROM messages WHERE channel_id = ? AND message_id = 1", ch.id)
    assert due[0] is None  # 14 days: the schedule is over


async def test_a_round_costs_one_request_of_each_kind_per_hundred_due_ids_per_channel(world, reader, db):
    big, _ = await archived(world, reader, db, "bigchan", 250)
    small, _ = await archived(world, reader, db, "smallchan", 30)
    world.advance(hours=5)  # every post is past its 1 h point
    world.reset_requests()
    report = await job(world, reader, db).run_once()
    assert (report.by_id(big.id).due, report.by_id(small.id).due) == (250, 30)
    expected = math.ceil(250 / 100) + math.ceil(30 / 100)
    assert world.requests["messages.GetMessagesViews"] == expected
    assert world.requests["messages.GetMessagesReactions"] == expected
    assert report.requests == 2 * expected and report.read == 280
    again = await job(world, reader, db).run_once()
    assert again.requests == 0  # nothing due until the next point


async def test_a_reading_is_not_an_edit_and_our_reads_are_not_views(world, reader, db):
    ch, poller = await archived(world, reader, db, "quiet", 3)
    world.advance(hours=2)
    world.set_views(ch, 2, 500, forwards=7)
    world.set_reactions(ch, 2, {"🔥": 4, "custom:5368324170671202286": 1, "paid": 2})
    await job(world, reader, db).run_once()
    assert ch.messages[2].views == 500  # increment=False
    [msg] = rows(db.path, "SELECT * FROM messages WHERE channel_id = ? AND message_id = 2", ch.id)
    assert (msg["views"], msg["forwards"], msg["edit_date"]) == (500, 7, None)
    assert json.loads(msg["reactions"]) == {"🔥": 4, "custom:5368324170671202286": 1, "paid": 2}
    assert rows(db.path, "SELECT count(*) FROM message_versions")[0][0] == 0
    assert rows(db.path, "SELECT count(*) FROM posts WHERE edited = 1 OR edited_at IS NOT NULL")[0][0] == 0
    report = await poller.recheck_once()
    assert report.by_id(ch.id).edited == 0


async def test_deleted_messages_stop_being_read(world, reader, db):
    ch, poller = await archived(world, reader, db, "deleting", 4)
    world.delete(ch, [2])
    await poller.recheck_once()
    world.advance(hours=2)
    before = len(readings(db, ch.id, 2))
    report = await job(world, reader, db).run_once()
    assert report.by_id(ch.id).due == 3 and report.ended == 1
    assert len(readings(db, ch.id, 2)) == before
    assert rows(db.path, "SELECT stats_due FROM messages WHERE channel_id = ? AND message_id = 2",
                ch.id)[0][0] is None


async def test_a_message_deleted_on_telegram_but_not_yet_in_the_archive_gets_no_empty_reading(
        world, reader, db):
    ch, _ = await archived(world, reader, db, "vanishing", 2)
    world.delete(ch, [1])
    world.advance(hours=2)
    before = len(readings(db, ch.id, 1))
    await job(world, reader, db).run_once()
    assert len(readings(db, ch.id, 1)) == before and len(readings(db, ch.id, 2)) == before + 1


async def test_stats_days_bounds_the_schedule(world, reader, db):
    ch, _ = await archived(world, reader, db, "shortlived", 1)
    engagement = job(world, reader, db, days=1)
    await step(world, engagement, ch, 3 * 24)
    got = readings(db, ch.id, 1)
    posted = ch.messages[1].date
    assert len(got) == 1 + len([p for p in SCHEDULE if p < timedelta(days=1)]) + 1
    assert parse_iso(got[-1]["at"]) - posted < timedelta(days=1, hours=1)


async def test_stats_days_zero_reads_nothing(world, reader, db):
    await archived(world, reader, db, "offchan", 3)
    world.advance(hours=2)
    world.reset_requests()
    report = await job(world, reader, db, days=0).run_once()
    assert report.requests == 0 and sum(world.requests.values()) == 0


async def test_one_private_channel_does_not_stop_the_others(world, reader, db, caplog):
    gone, _ = await archived(world, reader, db, "goneprivate", 5)
    fine, _ = await archived(world, reader, db, "stillfine", 5)
    world.make_private(gone)
    world.advance(hours=2)
    report = await job(world, reader, db).run_once()
    assert "ChannelPrivateError" in (report.by_id(gone.id).error or "")
    assert report.by_id(fine.id).read == 5 and report.by_id(fine.id).error is None
    assert any("engagement @goneprivate: private" in r.getMessage() for r in caplog.records)
    still_due = rows(db.path, "SELECT count(*) FROM messages WHERE channel_id = ? AND stats_due IS NOT NULL",
                     gone.id)
    assert still_due[0][0] == 5  # read when the channel is readable again


async def test_the_simulator_counts_an_incremented_view_once_per_reader(world, reader, db):
    ch, _ = await archived(world, reader, db, "counted", 1)
    ch.messages[1].views = 10
    peer = await reader.get_input_entity("counted")
    for _ in range(2):
        answer = await reader(functions.messages.GetMessagesViewsRequest(peer, [1, 99], increment=True))
    assert [v.views for v in answer.views] == [11, None]
    assert ch.messages[1].views == 11


async def test_the_daemon_runs_the_engagement_job_every_five_minutes_unless_off(
        world, reader, bot_client, db, tmp_path):
    ch = world.add_channel("daemonchan", "Daemon")
    world.post(ch, "hello")
    service = Service(settings_for(tmp_path, channels=("daemonchan",)), db, reader, bot_client,
                      scheduler=paused_scheduler(), now=lambda: world.now, time_scale=60)
    await service.start()
    assert service.scheduler.get_job("engagement").trigger.interval == timedelta(seconds=5)
    await service.poll_cycle()
    world.advance(hours=1)
    world.set_views(ch, 1, 42)
    await service.engagement_cycle()
    assert [r["views"] for r in readings(db, ch.id, 1)][-1] == 42
    await service.stop()
    off = Service(settings_for(tmp_path, stats_days=0), db, reader, bot_client, scheduler=paused_scheduler())
    await off.start()
    assert off.scheduler.get_job("engagement") is None
    await off.stop()


def test_stats_days_setting_defaults_to_14_and_names_itself_when_bad(tmp_path):
    env = tmp_path / "empty.env"
    env.write_text("")
    assert load_settings(env_file=env, environ={}).stats_days == 14
    assert load_settings(env_file=env, environ={"CHANWATCH_STATS_DAYS": "0"}).stats_days == 0
    for bad in ("two weeks", "-1", "400"):
        with pytest.raises(ConfigError) as caught:
            load_settings(env_file=env, environ={"CHANWATCH_STATS_DAYS": bad})
        assert caught.value.variable == "CHANWATCH_STATS_DAYS" and "0 to 365" in str(caught.value)


@pytest.mark.sqlite_only
async def test_a_full_disk_is_one_line_per_round_and_the_next_round_after_space_is_freed_reads_all(
        world, reader, bot_client, db, tmp_path, caplog):
    chans = [(await archived(world, reader, db, f"fullstats{n}", 120))[0] for n in range(2)]
    service = Service(settings_for(tmp_path), db, reader, bot_client, scheduler=paused_scheduler(),
                      now=lambda: world.now)
    world.advance(hours=2)
    await set_disk_full(service, True)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await service.engagement_cycle()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and not problems[0].exc_info
    line = problems[0].getMessage()
    assert "is full" in line and "2 channel(s) read but not stored" in line
    counted = "SELECT count(*) FROM message_stats"
    before = rows(db.path, counted)[0][0]
    await set_disk_full(service, False)
    report = await service.engagement.run_once()
    assert report.read == 240 and rows(db.path, counted)[0][0] == before + 240
    assert all(report.by_id(ch.id).error is None for ch in chans)
