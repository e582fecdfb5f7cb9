"""Digests: one message set per scheduled time in the chat's time zone, grouped by rule, split when
long; cron jobs that never overlap; schedules follow subscriber changes. The scheduler is driven
explicitly (triggers asked for fire times, job functions awaited); no wall-clock waits."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.alerts import INSTANT_JOB, REFRESH_JOB, Dispatcher, digest_job_id
from bot.clock import cron_trigger
from bot.formatting import LIMIT
from storage.outbox import get_alerts
from storage.rules import add_rule, get_subscriber, set_mode
from tests.bot.test_alerts import Clock, received, subscribe
from tests.storage.factories import MFA, msg
from tests.storage.outbox_helpers import archive, queue_alert

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

DAY = datetime(2025, 12, 17, 0, 0, tzinfo=UTC)
MOSCOW_8AM = datetime(2025, 12, 18, 5, 0, tzinfo=UTC)  # 08:00 in Europe/Moscow (UTC+3)


def day_of_alerts(chat_id: int, texts_and_rules: list[tuple[str, list[str]]]):
    """A setup function: each text archived as a post at a different hour, alerting `chat_id`."""

    def setup(conn):
        rules = {}
        for _, queries in texts_and_rules:
            for q in queries:
                rules[q] = add_rule(conn, chat_id, q)[0].id
        ids = archive(conn, *(msg(MFA, i + 1, text, minutes=60 * i)
                              for i, (text, _) in enumerate(texts_and_rules)))
        for i, (post_id, (_, queries)) in enumerate(zip(ids, texts_and_rules, strict=True)):
            queue_alert(conn, chat_id, post_id, [rules[q] for q in queries], DAY + timedelta(hours=2 * i))
        return ids

    return setup


async def test_posts_over_a_day_give_one_digest_at_8_in_the_chats_time_zone(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: set_mode(conn, alice.id, "digest", "0 8 * * *", "Europe/Moscow"))
    await db.run(day_of_alerts(alice.id, [
        ("Canada announced new sanctions", ["sanctions"]),
        ("Arctic council meeting", ["arctic"]),
        ("More sanctions talk in the Arctic", ["sanctions", "arctic"]),
        ("Sanctions, again", ["sanctions"]),
    ]))
    clock = Clock(DAY + timedelta(hours=12))
    d = Dispatcher(db, bot_client, now=clock, sleep=fake_sleep)
    assert await d.dispatch_instant() == 0  # a digest chat gets nothing instantly

    scheduler = AsyncIOScheduler()
    d.schedule(scheduler)
    await d.reschedule_digests()
    job = scheduler.get_job(digest_job_id(alice.id))
    fire = job.trigger.get_next_fire_time(None, clock())
    assert fire == MOSCOW_8AM

    clock.value = fire
    assert await job.func(*job.args) == 1
    [digest] = received(world, alice, bot_account)
    assert digest.text.startswith("🗞 Digest · 2025-12-18 08:00 Europe/Moscow · 4 posts")
    assert "sanctions — 3 posts" in digest.text and "arctic — 1 post" in digest.text
    assert "also matches: arctic" in digest.text
    for text in ("Canada announced new sanctions", "Arctic council meeting", "Sanctions, again"):
        assert digest.text.count(text) == 1
    assert all(a.sent_at for a in await db.run(get_alerts))

    clock.value = fire + timedelta(days=1)
    assert await job.func(*job.args) == 0  # nothing new: no empty digest
    assert len(received(world, alice, bot_account)) == 1


async def test_a_long_digest_is_split_between_posts_and_every_post_arrives_once(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: set_mode(conn, alice.id, "digest"))
    await db.run(day_of_alerts(alice.id, [
        (f"Item {i:02d} on sanctions: " + "a fairly long sentence of filler words " * 8, ["sanctions"])
        for i in range(30)
    ]))
    d = Dispatcher(db, bot_client, now=Clock(DAY + timedelta(days=1, hours=8)), sleep=fake_sleep)
    sent = await d.send_digest(alice.id)
    messages = received(world, alice, bot_account)
    assert sent == len(messages) > 1
    assert all(len(m.text) < LIMIT for m in messages)
    joined = "\n".join(m.text for m in messages)
    assert [joined.count(f"Item {i:02d} on") for i in range(30)] == [1] * 30
    assert fake_sleep.calls == [1.0] * (sent - 1)  # paced like any other messages to one chat


async def test_digest_jobs_are_configured_never_to_overlap(world, bot_client, alice, db, fake_sleep) -> None:
    await db.run(lambda conn: set_mode(conn, alice.id, "digest", None, "Asia/Tokyo"))
    scheduler = AsyncIOScheduler()
    d = Dispatcher(db, bot_client, sleep=fake_sleep)
    d.schedule(scheduler, instant_every=3)
    await d.reschedule_digests()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {INSTANT_JOB, REFRESH_JOB, digest_job_id(alice.id)}
    for job in jobs.values():
        assert (job.max_instances, job.coalesce) == (1, True)
        assert job.misfire_grace_time and job.misfire_grace_time > 0
    assert isinstance(jobs[INSTANT_JOB].trigger, IntervalTrigger)
    assert jobs[INSTANT_JOB].trigger.interval == timedelta(seconds=3)
    assert jobs[INSTANT_JOB].func == d.dispatch_instant
    digest = jobs[digest_job_id(alice.id)]
    assert isinstance(digest.trigger, CronTrigger) and str(digest.trigger.timezone) == "Asia/Tokyo"
    # the default schedule, 08:00 in Tokyo = 23:00 UTC the day before
    assert digest.trigger.get_next_fire_time(None, DAY) == datetime(2025, 12, 17, 23, 0, tzinfo=UTC)


async def test_schedules_follow_subscriber_changes(world, bot_client, alice, db, fake_sleep) -> None:
    scheduler = AsyncIOScheduler()
    d = Dispatcher(db, bot_client, sleep=fake_sleep, default_schedule="30 7 * * *")
    d.schedule(scheduler)
    await db.run(lambda conn: set_mode(conn, alice.id, "digest"))
    await d.reschedule_digests()
    job = scheduler.get_job(digest_job_id(alice.id))
    assert job.trigger.get_next_fire_time(None, DAY) == DAY.replace(hour=7, minute=30)
    await db.run(lambda conn: set_mode(conn, alice.id, "digest", "0 18 * * *"))
    await d.reschedule_digests()
    job = scheduler.get_job(digest_job_id(alice.id))
    assert job.trigger.get_next_fire_time(None, DAY) == DAY.replace(hour=18)
    await db.run(lambda conn: set_mode(conn, alice.id, "instant"))
    await d.reschedule_digests()
    assert scheduler.get_job(digest_job_id(alice.id)) is None


async def test_an_unusable_schedule_falls_back_to_the_default_with_a_warning(
        world, bot_client, alice, db, fake_sleep, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="chanwatch.alerts")
    await db.run(lambda conn: set_mode(conn, alice.id, "digest", "every morning", "Mars/Olympus"))
    d = Dispatcher(db, bot_client, sleep=fake_sleep)
    subscriber = await db.run(get_subscriber, alice.id)
    trigger = d.trigger_for(subscriber)
    assert trigger.get_next_fire_time(None, DAY) == DAY.replace(hour=8)
    assert any("unusable" in r.getMessage() and str(alice.id) in r.getMessage() for r in caplog.records)


def test_crontab_weekdays_count_from_sunday_as_in_cron() -> None:
    saturday = datetime(2025, 12, 20, 9, 0, tzinfo=UTC)
    assert cron_trigger("0 8 * * 1-5").get_next_fire_time(None, saturday) == datetime(
        2025, 12, 22, 8, 0, tzinfo=UTC)  # Monday
    assert cron_trigger("0 8 * * 0").get_next_fire_time(None, saturday) == datetime(
        2025, 12, 21, 8, 0, tzinfo=UTC)  # Sunday
    assert cron_trigger("0 8 * * 7").get_next_fire_time(None, saturday) == datetime(
        2025, 12, 21, 8, 0, tzinfo=UTC)


def test_a_digest_time_follows_daylight_saving_in_its_zone() -> None:
    trigger = cron_trigger("0 8 * * *", "America/New_York")
    assert trigger.get_next_fire_time(None, datetime(2025, 7, 1, tzinfo=UTC)) == datetime(
        2025, 7, 1, 12, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, datetime(2025, 12, 1, tzinfo=UTC)) == datetime(
        2025, 12, 1, 13, 0, tzinfo=UTC)


async def test_a_digest_to_a_chat_that_blocked_the_bot_pauses_it_and_keeps_the_alerts(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: set_mode(conn, alice.id, "digest"))
    await db.run(day_of_alerts(alice.id, [("sanctions news", ["sanctions"])]))
    world.block(alice, bot_account)
    d = Dispatcher(db, bot_client, now=Clock(DAY + timedelta(days=1)), sleep=fake_sleep)
    assert await d.send_digest(alice.id) == 0
    assert (await db.run(get_subscriber, alice.id)).paused
    [alert] = await db.run(get_alerts)
    assert (alert.sent_at, alert.attempts) == (None, 0)
    assert await d.send_digest(alice.id) == 0  # paused: not tried again


async def test_a_chat_without_its_own_zone_gets_its_digest_in_the_configured_zone(
        world, bot_client, alice, db, fake_sleep) -> None:
    await db.run(lambda conn: set_mode(conn, alice.id, "digest"))
    d = Dispatcher(db, bot_client, sleep=fake_sleep, default_timezone="Asia/Tokyo")
    trigger = d.trigger_for(await db.run(get_subscriber, alice.id))
    assert trigger.get_next_fire_time(None, DAY) == datetime(2025, 12, 17, 23, 0, tzinfo=UTC)  # 08:00 JST
