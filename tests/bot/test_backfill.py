"""Backfill through the simulator: complete, resumable after a crash or a limit, since, takeout."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from bot.backfill import BackfillError, backfill
from bot.resolve import resolve_channels
from bot.simulator import World
from bot.telegram import FloodPolicy
from tests.bot.conftest import FakeSleep
from tests.bot.test_poller import (
    channel_row,
    make_poller,
    message_ids,
    rows,
)

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

N = 10_000



def big_channel(world: World, n: int = N, username: str = "historychan"):
    ch = world.add_channel(username, "History")
    start = world.now - timedelta(minutes=n)
    for i in range(n):
        world.post(ch, f"history message {i + 1} of the archive", date=start + timedelta(minutes=i))
    return ch


def run(db, reader, world, channel="historychan", **kwargs):
    kwargs.setdefault("flood", FloodPolicy(max_wait=60))
    return backfill(db, reader, channel, now=lambda: world.now, sleep=kwargs.pop("sleep", FakeSleep()),
                    **kwargs)


async def test_ten_thousand_messages_one_request_per_page(world, reader, db):
    ch = big_channel(world)
    await resolve_channels(db, reader, ["historychan"])
    world.reset_requests()
    report = await run(db, reader, world)
    assert world.requests["messages.GetHistory"] == math.ceil(N / 100) == report.requests
    assert dict(world.requests) == {"messages.GetHistory": 100}
    assert (report.messages, report.new_messages, report.stopped_by, report.done) == (N, N, "start", True)
    assert message_ids(db, ch.id) == list(range(1, N + 1))
    assert len(rows(db.path, "SELECT id FROM posts")) == N
    row = channel_row(db, ch.id)
    assert (row["cursor"], row["backfill_before"], row["backfill_done"]) == (N, 1, 1)
    # Done: another run sends nothing; polling continues from the newest.
    world.reset_requests()
    again = await run(db, reader, world)
    assert again.stopped_by == "done" and world.requests["messages.GetHistory"] == 0
    world.post(ch, "after the backfill")
    report = await make_poller(db, reader, world).poll_once()
    assert report.by_id(ch.id).new_messages == 1


async def test_crash_mid_way_then_resume_gives_no_gaps(world, reader, db):
    ch = big_channel(world)
    pages = []

    def crash_on_page_37(conn, result):
        pages.append(result)
        if len(pages) == 37:
            raise RuntimeError("killed mid-backfill")

    world.reset_requests()
    with pytest.raises(RuntimeError, match="killed"):
        await run(db, reader, world, after_ingest=crash_on_page_37)
    row = channel_row(db, ch.id)
    assert row["backfill_before"] == N - 36 * 100 + 1  # 36 pages committed, the 37th rolled back
    assert row["backfill_done"] == 0 and row["cursor"] == N
    assert len(message_ids(db, ch.id)) == 3600
    report = await run(db, reader, world, after_ingest=lambda conn, result: None)
    assert report.resumed_from == N - 3600 + 1
    assert (report.messages, report.new_messages, report.done) == (N - 3600, N - 3600, True)
    assert message_ids(db, ch.id) == list(range(1, N + 1))
    assert len(rows(db.path, "SELECT id FROM posts")) == N
    # The page whose commit failed, and the next one (prefetched during that commit), are fetched
    # twice; nothing else.
    assert world.requests["messages.GetHistory"] == math.ceil(N / 100) + 2
    # ResolveUsername once, for the first run only.
    assert world.requests["contacts.ResolveUsername"] == 1


@pytest.mark.parametrize("n, limit, total_requests", [(N, 5000, 100), (3000, 1150, 31)])
async def test_limit_then_resume(world, reader, db, n, limit, total_requests):
    ch = big_channel(world, n)
    await resolve_channels(db, reader, ["historychan"])
    world.reset_requests()
    first = await run(db, reader, world, limit=limit)
    assert (first.messages, first.stopped_by, first.done) == (limit, "limit", False)
    assert message_ids(db, ch.id) == list(range(n - limit + 1, n + 1))
    second = await run(db, reader, world)
    assert second.messages == n - limit and second.done
    assert message_ids(db, ch.id) == list(range(1, n + 1))
    assert world.requests["messages.GetHistory"] == total_requests


async def test_since_stops_at_the_day_and_a_later_run_goes_further(world, reader, db):
    ch = world.add_channel("dayschan", "Days")
    for day in range(1, 11):  # 30 posts a day, 2025-11-01 .. 2025-11-10
        for k in range(30):
            world.post(ch, f"day {day} post {k}", date=datetime(2025, 11, day, 8, k, tzinfo=world.now.tzinfo))
    first = await run(db, reader, world, channel="@dayschan", since=date(2025, 11, 8))
    assert (first.messages, first.stopped_by, first.done) == (90, "since", True)
    dates = rows(db.path, "SELECT min(date) AS d FROM messages")[0]["d"]
    assert dates.startswith("2025-11-08")
    world.reset_requests()
    same = await run(db, reader, world, channel="@dayschan", since=date(2025, 11, 8))
    assert same.messages == 0 and world.requests["messages.GetHistory"] == 1
    rest = await run(db, reader, world, channel=str(ch.id))
    assert rest.messages == 210
    assert message_ids(db, ch.id) == list(range(1, 301))


async def test_backfill_stopped_above_the_poll_cursor_leaves_no_gap(world, reader, db):
    ch = big_channel(world, 300, "mixedchan")
    await resolve_channels(db, reader, ["mixedchan"])
    poller = make_poller(db, reader, world)
    await poller.poll_once()  # never polled: newest page only, cursor 300
    assert channel_row(db, ch.id)["cursor"] == 300
    for i in range(250):
        world.post(ch, f"later {i}")  # 301..550
    part = await run(db, reader, world, channel="mixedchan", limit=100)  # 451..550
    assert part.messages == 100
    assert channel_row(db, ch.id)["cursor"] == 300  # not raised over the hole 301..450
    await poller.poll_once()
    assert channel_row(db, ch.id)["cursor"] == 550
    await run(db, reader, world, channel="mixedchan")
    assert message_ids(db, ch.id) == list(range(1, 551))


async def test_short_flood_in_backfill_is_slept(world, reader, db):
    big_channel(world, 250)
    world.inject_flood("messages.GetHistory", 5)
    sleep = FakeSleep()
    report = await run(db, reader, world, sleep=sleep)
    assert sleep.calls == [5] and report.flood_slept == 5
    assert report.messages == 250 and report.requests == 4


async def test_takeout_unsupported_is_a_clear_error(world, reader, db):
    big_channel(world, 10)
    with pytest.raises(BackfillError, match="takeout") as err:
        await run(db, reader, world, takeout=True)
    assert "without --takeout" in str(err.value)
    assert channel_row(db, world.resolve("historychan").id)["backfill_before"] is None


async def test_unknown_channel(world, reader, db):
    with pytest.raises(BackfillError, match="not_found"):
        await run(db, reader, world, channel="@nosuchchannel")
    with pytest.raises(BackfillError, match="not in the archive"):
        await run(db, reader, world, channel=123456)


async def test_progress_hears_every_page_with_the_ids_left_as_total(world, reader, db):
    big_channel(world, 350)
    heard: list[tuple[str, int, int | None]] = []
    await run(db, reader, world, progress=lambda *event: heard.append(event))
    assert heard == [("backfill @historychan", 100, 350), ("backfill @historychan", 200, 350),
                     ("backfill @historychan", 300, 350), ("backfill @historychan", 350, 350)]


async def test_progress_counts_messages_taken_against_a_limit(world, reader, db):
    big_channel(world, 350)
    heard: list[tuple[str, int, int | None]] = []
    await run(db, reader, world, limit=150, progress=lambda *event: heard.append(event))
    assert [(done, total) for _, done, total in heard] == [(100, 150), (150, 150)]


async def test_backfilled_history_queues_its_media_and_the_downloader_fetches_it_once(world, reader, db,
                                                                                     tmp_path):
    from bot.media import Downloader, MediaPolicy
    from storage.media_store import MediaStore

    ch = world.add_channel("historychan", "History")
    note = b"%PDF-1.7 an old signed note " * 300
    world.post(ch, "an old statement", media=world.document(note, mime_type="application/pdf",
                                                            file_name="note.pdf"))
    for i in range(5):
        world.post(ch, f"later text {i}")
    await resolve_channels(db, reader, ["historychan"])
    report = await run(db, reader, world)
    assert report.done and [tuple(r) for r in rows(db.path, "SELECT kind, state FROM tg_files")] == [
        ("document", "queued")]
    worker = Downloader(db, reader, MediaStore(tmp_path / "media"), MediaPolicy(kinds=None, max_bytes=None),
                        now=lambda: world.now, sleep=FakeSleep(), flood=FloodPolicy(max_wait=60))
    assert (await worker.run_once()).done == 1
    assert world.bytes_served.total() == len(note)
    assert [p.read_bytes() for p in (tmp_path / "media").rglob("*.pdf")] == [note]
