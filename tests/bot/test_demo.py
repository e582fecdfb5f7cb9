"""`chanwatch demo`: the sample day in the simulator, terminal rendering, the job driver, the whole run."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import Button
from telethon.extensions import html
from telethon.tl import types

from bot import cli
from bot.cli.app import build_parser
from bot.cli.demo import demo_archive, parse_speed
from bot.demo.driver import JobDriver
from bot.demo.render import render_message, to_terminal
from bot.demo.runner import ALERT_MAX_AGE_HOURS, DemoSummary, Screen, run_demo, summary_text
from bot.demo.scenario import SCENARIO, Event, FileSpec, validate
from bot.demo.timeline import Timeline, build_world, parse_text, utf16_len
from bot.serve.app import build as build_served
from bot.simulator import ChatLogEntry

# What the sample day leaves in the archive (see bot/demo/scenario.py): 35 messages in 4 channels,
# 21 distinct posts (a 3-photo album is one), 9 alerts (3 rules; the sanctions statement forwarded
# by 3 embassies counts once); 5 files (a photo, a PDF forwarded twice, an album of 3 photos).
POSTS, SIGHTINGS, ALERTS = 21, 35, 9
# Kenya's forward of the PDF shares the original's file; Canada, read by its web preview, has no file ids
MEDIA_FILES, MEDIA_BYTES, MEDIA_SAVED = 5, 6_000 + 9_000 + 4_000 + 3_500 + 5_000, 1
STATEMENT = "Statement by the Ministry of Foreign Affairs of Freedonia on Canada's new sanctions"


def rows(path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- the scenario and the World --------------------------------------------------------------------


def test_scenario_is_ordered_and_every_reference_resolves():
    validate(SCENARIO)
    day = [e for e in SCENARIO.events if e.when >= SCENARIO.begins]
    assert 20 <= len(day) <= 35
    assert {e.kind for e in day} == {"post", "forward", "edit", "delete", "say"}
    texts = " ".join(e.text for e in SCENARIO.events)
    assert re.search("[а-я]", texts) and "Freedonia" in texts  # Russian and English


@pytest.mark.parametrize("broken, message", [
    (Event("07:00", "forward", "ca", source="nothing"), "unknown message"),
    (Event("07:00", "post", "nowhere", text="x"), "unknown channel"),
    (Event("07:00", "post", "mfa"), "without text"),
    (Event("07:00", "say", text="/start", files=(FileSpec("x.jpg", 10),)), "only a post carries files"),
])
def test_validate_names_the_broken_event(broken, message):
    with pytest.raises(ValueError, match=message):
        validate(replace(SCENARIO, events=(broken,)))


def test_validate_rejects_events_out_of_order():
    late, early = Event("09:00", "say", text="/start"), Event("08:00", "say", text="/start")
    with pytest.raises(ValueError, match="out of order"):
        validate(replace(SCENARIO, events=(late, early)))


def test_parse_text_makes_bold_link_and_hashtag_entities_at_utf16_offsets():
    text, entities = parse_text("🇨🇦 **Заявление** [Read](https://x.example/1) #санкции #Canada")
    assert text == "🇨🇦 Заявление Read #санкции #Canada"
    by_type = {type(e): e for e in entities if not isinstance(e, types.MessageEntityHashtag)}
    bold = by_type[types.MessageEntityBold]
    assert (bold.offset, bold.length) == (5, len("Заявление"))  # each flag letter is 2 UTF-16 units
    assert by_type[types.MessageEntityTextUrl].url == "https://x.example/1"
    tags = [(e.offset, e.length) for e in entities if isinstance(e, types.MessageEntityHashtag)]
    assert tags == [(utf16_len("🇨🇦 Заявление Read "), 8), (utf16_len("🇨🇦 Заявление Read #санкции "), 7)]


async def test_timeline_fills_the_world_with_the_days_channels_and_messages(no_network):
    demo = build_world(SCENARIO)
    timeline = Timeline(demo, SCENARIO)
    world, ch = demo.world, demo.channels
    try:
        timeline.apply_until(SCENARIO.ends)
        assert timeline.finished and world.now == SCENARIO.ends
        assert {c.username for c in ch.values()} == {
            "mfa_freedonia", "freedonia_in_canada", "freedonia_in_kenya", "freedonia_in_brazil"}
        assert ch["mfa"].title == "Ministry of Foreign Affairs of Freedonia"
        counts = {key: len(c.history()) for key, c in ch.items()}
        assert counts == {"mfa": 11, "ca": 8, "ke": 6, "br": 9}  # one Brazil post was deleted
        assert sum(counts.values()) + len(ch["br"].deleted) == SIGHTINGS

        # the English statement, forwarded by all three embassies, each forward pointing at the original
        mfa_channel, statement_id = timeline.messages["m_sanctions_en"]
        assert mfa_channel is ch["mfa"] and STATEMENT in mfa_channel.messages[statement_id].message
        for key in ("ca", "ke", "br"):
            forwards = [m for m in ch[key].history()
                        if m.fwd_from and m.fwd_from.channel_post == statement_id]
            assert len(forwards) == 1 and forwards[0].fwd_from.from_id.channel_id == ch["mfa"].id

        # a forward of Kenya's forward still names the ministry's original
        _, eu_id = timeline.messages["m_eu_sanctions"]
        last = ch["ca"].history()[-1]
        assert (last.fwd_from.from_id.channel_id, last.fwd_from.channel_post) == (ch["mfa"].id, eu_id)

        # the edit added a watched word; the typo post is gone
        _, consular_id = timeline.messages["c_consular"]
        edited = ch["ca"].messages[consular_id]
        assert "sanctions" in edited.message
        assert edited.edit_date == datetime(2025, 12, 16, 15, 20, tzinfo=UTC)
        _, typo_id = timeline.messages["b_reception_typo"]
        assert typo_id in ch["br"].deleted and typo_id not in ch["br"].messages

        said = [e.text for e in world.chat_log(demo.subscriber, with_=demo.bot)]
        assert said == ["/rules", "/search sanctions OR санкции"]
    finally:
        await world.close()


async def test_timeline_posts_real_files_a_forwarded_pdf_and_one_album(no_network):
    demo = build_world(SCENARIO)
    timeline = Timeline(demo, SCENARIO)
    world, ch = demo.world, demo.channels
    try:
        timeline.apply_until(SCENARIO.ends)
        specs = [f for e in SCENARIO.events for f in e.files]
        assert sorted(f.size for f in specs) == sorted(file.size for file in world.files.values())
        assert {bytes(file.data) for file in world.files.values()} == {f.data() for f in specs}
        assert all(len(f.data()) == f.size and f.data() == f.data() for f in specs)  # the same every run
        album = [m for m in ch["br"].history() if m.grouped_id]
        assert len(album) == 3 and len({m.grouped_id for m in album}) == 1
        assert [bool(m.message) for m in album] == [True, False, False]  # the caption is on the first
        assert all(isinstance(m.media, types.MessageMediaPhoto) for m in album)
        _, pdf_id = timeline.messages["m_eu_sanctions"]
        pdf = ch["mfa"].messages[pdf_id].media.document
        assert pdf.mime_type == "application/pdf"
        carriers = [m for c in ch.values() for m in c.history()
                    if isinstance(m.media, types.MessageMediaDocument) and m.media.document.id == pdf.id]
        assert len(carriers) == 3  # the original, Kenya's forward and Canada's forward of that
    finally:
        await world.close()


async def test_timeline_performs_each_event_at_its_own_time_and_only_once(no_network):
    demo = build_world(SCENARIO)
    timeline = Timeline(demo, SCENARIO)
    try:
        first = timeline.apply_until(datetime(2025, 12, 16, 7, 44, tzinfo=UTC))
        assert [h.event.label for h in first if h.event.label][-1] == "m_sanctions_ru"
        assert timeline.next_at == datetime(2025, 12, 16, 7, 45, tzinfo=UTC)
        channel, msg_id = timeline.messages["m_sanctions_ru"]
        assert channel.messages[msg_id].date == datetime(2025, 12, 16, 7, 40, tzinfo=UTC)
        assert demo.world.now == datetime(2025, 12, 16, 7, 44, tzinfo=UTC)
        assert timeline.apply_until(datetime(2025, 12, 16, 7, 44, tzinfo=UTC)) == []
        rest = timeline.apply_until(SCENARIO.ends)
        assert len(first) + len(rest) == len(SCENARIO.events)
        assert [h.when for h in rest] == sorted(h.when for h in rest)
    finally:
        await demo.world.close()


# --- terminal rendering ---------------------------------------------------------------------------


def test_bold_becomes_ansi_bold_only_in_color_and_links_show_their_url():
    text, entities = html.parse('📢 <b>Ministry &amp; Co</b> · <a href="https://t.me/mfa_freedonia/4">07:45</a>')
    assert to_terminal(text, entities) == "📢 Ministry & Co · 07:45 <https://t.me/mfa_freedonia/4>"
    assert to_terminal(text, entities, color=True) == (
        "📢 \x1b[1mMinistry & Co\x1b[22m · 07:45 <https://t.me/mfa_freedonia/4>")


def test_styles_after_astral_emoji_land_on_the_right_characters():
    text, entities = html.parse("🇨🇦🇰🇪 x <b>санкции</b> <i>и <b>ещё</b></i>!")
    assert to_terminal(text, entities, color=True) == (
        "🇨🇦🇰🇪 x \x1b[1mсанкции\x1b[22m \x1b[3mи \x1b[1mещё\x1b[22m\x1b[23m!")


def test_a_link_whose_text_is_its_url_is_not_repeated():
    text, entities = html.parse('see <a href="https://t.me/x/1">https://t.me/x/1</a>')
    assert to_terminal(text, entities) == "see https://t.me/x/1"


def test_render_message_frames_the_text_and_lists_buttons():
    text, entities = html.parse("<b>Results</b> for sanctions\nline two")
    markup = types.ReplyInlineMarkup([types.KeyboardButtonRow([
        Button.inline("Next ▶", b"p2"), Button.url("Open", "https://t.me/x")])])
    entry = ChatLogEntry(sender_id=1, peer_id=2, is_group=False, text=text, date=datetime.now(UTC),
                         entities=entities, reply_markup=markup)
    block = render_message(entry, sender="@bot", recipient="Dana",
                           when=datetime(2025, 12, 16, 18, 0, tzinfo=UTC)).splitlines()
    assert block[0].startswith("── 18:00  @bot → Dana ──")
    assert block[1:] == ["│ Results for sanctions", "│ line two", "│ [ Next ▶ ]  [ Open ] <https://t.me/x>"]


def printed_times(output: str) -> list[str]:
    """The simulated times of the demo's lines, in print order: channel events and bot messages."""
    return re.findall(r"^(?:── )?(\d\d:\d\d)  ", output, re.M)


async def test_what_the_bot_sent_before_new_events_prints_before_them(no_network):
    """At a paced speed the scheduler also runs the daemon's jobs on its own, while the demo waits
    for its next tick: an alert sent then (07:44) must print before the events the tick then
    performs (07:45), not after them."""
    demo = build_world(SCENARIO)
    timeline, out = Timeline(demo, SCENARIO), _Out()
    screen = Screen(demo, out, color=False)
    try:
        timeline.apply_until(SCENARIO.begins - timedelta(seconds=1))  # the history the runner does not print
        screen.happened(timeline.apply_until(datetime(2025, 12, 16, 7, 44, tzinfo=UTC)))
        demo.world.deliver(demo.bot, demo.subscriber, "🔔 Matched rule: sanctions OR санкции")
        screen.happened(timeline.apply_until(datetime(2025, 12, 16, 7, 45, tzinfo=UTC)))
        screen.bot_output()
        times = printed_times(out.text)
        assert times[-2:] == ["07:44", "07:45"] and times == sorted(times)
        assert out.text.index("Matched rule") < out.text.index("@mfa_freedonia/4 posted")
    finally:
        await demo.world.close()


# --- the job driver -------------------------------------------------------------------------------


async def test_driver_runs_interval_jobs_once_per_simulated_period_and_waits_for_them():
    clock = [datetime(2025, 12, 16, 7, 0, tzinfo=UTC)]
    done: list[str] = []

    async def poll() -> None:
        await asyncio.sleep(0)
        done.append(f"poll {clock[0]:%H:%M}")

    async def send() -> None:
        done.append(f"send {clock[0]:%H:%M}")

    scheduler = AsyncIOScheduler(timezone=UTC)
    # periods in real seconds = simulated / time_scale; long enough never to fire on their own here
    scheduler.add_job(poll, "interval", seconds=300 / 0.001, id="poll", max_instances=1, coalesce=True)
    scheduler.add_job(send, "interval", seconds=5 / 0.001, id="send", max_instances=1, coalesce=True)
    driver = JobDriver(scheduler, lambda: clock[0], time_scale=0.001, min_period=300)
    scheduler.start()
    try:
        assert await driver.run_due() == ["poll", "send"]  # never run: both due; slower first
        assert done == ["poll 07:00", "send 07:00"]  # finished when run_due returned
        clock[0] += timedelta(minutes=4)
        assert await driver.run_due() == []
        assert driver.next_due() == datetime(2025, 12, 16, 7, 5, tzinfo=UTC)  # send clamped to min_period
        clock[0] += timedelta(minutes=1)
        assert await driver.run_due() == ["poll", "send"]
        assert await driver.run_now("nope") is False
        assert driver.runs == {"poll": 2, "send": 2}
    finally:
        driver.close()
        scheduler.shutdown(wait=False)


async def test_driver_waits_for_a_running_instance_then_runs_again():
    gate = asyncio.Event()
    started: list[int] = []

    async def slow() -> None:
        started.append(len(started) + 1)
        if len(started) == 1:
            await gate.wait()

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(slow, "interval", seconds=3600, id="slow", max_instances=1, coalesce=True)
    driver = JobDriver(scheduler, lambda: datetime(2025, 12, 16, tzinfo=UTC))
    scheduler.start()
    try:
        first = asyncio.ensure_future(driver.run_now("slow"))
        while not started:
            await asyncio.sleep(0)
        second = asyncio.ensure_future(driver.run_now("slow"))  # max_instances: must wait, then rerun
        for _ in range(50):
            await asyncio.sleep(0)
        assert not second.done() and started == [1]
        gate.set()
        assert await first is True and await second is True
        assert started == [1, 2]
    finally:
        driver.close()
        scheduler.shutdown(wait=False)


# --- the whole demo -------------------------------------------------------------------------------


def _blocks(output: str) -> list[str]:
    """The framed bot messages of the demo's output, unwrapped to one line each."""
    blocks = re.findall(r"^── \d\d:\d\d  @chanwatch_demo_bot → Dana .*?(?=^[^│]|\Z)", output, re.S | re.M)
    return [" ".join(line.removeprefix("│").strip() for line in b.splitlines()[1:]) for b in blocks]


def test_demo_runs_the_day_offline_and_reports_exact_counts(tmp_path, capsys, no_network, monkeypatch):
    monkeypatch.delenv("CHANWATCH_DB", raising=False)
    archive = tmp_path / "demo.db"
    assert cli.main(["demo", "--speed", "max", "--db", str(archive), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert not no_network

    times = printed_times(out)
    assert len(times) > 40 and times == sorted(times)
    summary = dict(re.findall(r"^  (posts|sightings|duplicates avoided|alerts sent)\s+(\d+)", out, re.M))
    assert summary == {"posts": str(POSTS), "sightings": str(SIGHTINGS),
                       "duplicates avoided": str(SIGHTINGS - POSTS), "alerts sent": str(ALERTS)}
    assert f"chanwatch --db {archive} search 'sanctions OR санкции'" in out

    # the statement forwarded by three embassies is alerted exactly once, before the /search ...
    before_search, after_search = out.split("Dana → @chanwatch_demo_bot: /search sanctions OR санкции\n")
    alerts = [b for b in _blocks(before_search) if STATEMENT in b]
    assert len(alerts) == 1 and "\x1b[" not in alerts[0]
    # ... whose reply (printed right under it) finds it again, with its three forwards
    reply = _blocks(after_search)[0]
    assert after_search.startswith("── 18:00  @chanwatch_demo_bot → Dana")
    assert STATEMENT in reply and "freedonia_in_kenya/2" in reply and "freedonia_in_brazil/2" in reply
    [bot_messages] = re.findall(r"^  bot messages\s+(\d+)", out, re.M)
    assert int(bot_messages) >= ALERTS + 2  # alerts, the /rules reply and the /search reply

    # the kept archive agrees
    [(posts, sightings)] = rows(archive, "SELECT (SELECT COUNT(*) FROM posts),"
                                         " (SELECT COUNT(*) FROM messages)")
    assert (posts, sightings) == (POSTS, SIGHTINGS)
    statement = rows(archive, "SELECT p.id, COUNT(m.message_id) FROM posts p"
                              " JOIN messages m ON m.post_id = p.id WHERE p.text LIKE ? GROUP BY p.id",
                     f"%{STATEMENT}%")
    assert len(statement) == 1 and statement[0][1] == 4  # the original and three forwards
    assert rows(archive, "SELECT COUNT(*), COUNT(sent_at) FROM alerts WHERE post_id = ?",
                statement[0][0]) == [(1, 1)]
    assert rows(archive, "SELECT COUNT(*) FROM alerts WHERE sent_at IS NOT NULL") == [(ALERTS,)]
    assert rows(archive, "SELECT COUNT(*) FROM messages WHERE deleted_at IS NOT NULL") == [(1,)]
    assert rows(archive, "SELECT COUNT(*) FROM message_versions") == [(1,)]


def test_the_demo_summary_reports_live_alert_delays_and_the_statements_engagement_curves(
        tmp_path, capsys, no_network):
    archive = tmp_path / "demo.db"
    assert cli.main(["demo", "--speed", "max", "--db", str(archive), "--color", "never"]) == 0
    out = capsys.readouterr().out
    # joined channels: every new post reached the chat the moment its update did, not at the next poll
    assert re.search(r"^  alert delay\s+median 0 s, max 0 s after the post", out, re.M)
    [(statement,)] = rows(archive, "SELECT id FROM posts WHERE text LIKE ?", f"%{STATEMENT}%")
    assert f"How far post {statement} travelled" in out
    assert f"chanwatch --db {archive} show {statement}" in out
    curve = r"^  @(\w+)/\d+: [▁▂▃▄▅▆▇█]{20} 0 → ([\d,]+) views over \d+ h[ \d]*(?:min)? \((\d+) readings\)"
    curves = re.findall(curve, out, re.M)
    assert [name for name, _, _ in curves] == [
        "mfa_freedonia", "freedonia_in_canada", "freedonia_in_kenya", "freedonia_in_brazil"]
    views = [int(v.replace(",", "")) for _, v, _ in curves]
    assert views[0] > views[1] > views[2] > views[3] > 0  # the ministry's audience, then each embassy's
    readings = {name: int(n) for name, _, n in curves}
    assert readings.pop("freedonia_in_canada") > 5  # read by web: every re-read whose count moved
    assert set(readings.values()) == {5}  # at first sight, then 1 h, 3 h, 6 h and 12 h after
    [(readings, deleted_via)] = rows(
        archive, "SELECT (SELECT COUNT(*) FROM message_stats),"
                 " (SELECT deleted_via FROM messages WHERE deleted_at IS NOT NULL)")
    assert re.search(rf"^  engagement readings\s+{readings}\b", out, re.M) and deleted_via == "update"
    # Canada is read from its web preview, the rest through the account: every Canadian message came
    # from a t.me page, its edit too, and its forwards joined the ministry's posts by the header's link
    kinds = rows(archive, "SELECT c.username = 'freedonia_in_canada', json_extract(m.raw, '$._'), count(*)"
                          " FROM messages m JOIN channels c ON c.id = m.channel_id GROUP BY 1, 2 ORDER BY 1")
    assert [(web, kind) for web, kind, _ in kinds] == [(0, "Message"), (1, "WebPost")]
    assert rows(archive, "SELECT c.username FROM message_versions v JOIN channels c ON c.id = v.channel_id"
                ) == [("freedonia_in_canada",)]
    assert "is read without an account, from its public web preview" in out
    assert f"chanwatch --db {archive} serve" in out
    # the reports and the web view work on the demo's archive: the statement's four sightings
    page = tmp_path / "amplification.html"
    assert cli.main(["--db", str(archive), "report", "amplification", "--format", "html",
                     "--out", str(page)]) == 0
    report = page.read_text(encoding="utf-8")
    assert report.count("<svg") >= 3 and "freedonia_in_kenya" in report and "mfa_freedonia" in report
    served = asyncio.run(_served(archive, f"/-/chanwatch/post/{statement}"))
    assert served.status_code == 200
    for name in ("mfa_freedonia", "freedonia_in_canada", "freedonia_in_kenya", "freedonia_in_brazil"):
        assert f"https://t.me/{name}/" in served.text


async def _served(archive: Path, path: str) -> httpx.Response:
    """One page of `chanwatch serve` over the archive, in-process."""
    app = build_served(archive, media_dir=archive.parent / "media").app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get(path)


async def test_paced_demo_gives_the_same_day_as_max_speed(tmp_path, no_network, caplog):
    """The paced clock (injected: no real waiting) with the scheduler's own firing leaves the same
    archive; the daemon's pacing sleeps go through the same injected sleep."""
    caplog.set_level(logging.WARNING)
    fake = {"t": 0.0}
    slept: list[float] = []

    def clock() -> float:
        return fake["t"]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake["t"] += seconds
        await asyncio.sleep(0)

    out = _Out()
    summary = await run_demo(speed=4000.0, db_path=None, out=out, clock=clock, sleep=sleep)
    assert (summary.posts, summary.sightings, summary.alerts_sent) == (POSTS, SIGHTINGS, ALERTS)
    assert summary.archive is None and "The archive was temporary" in out.text
    assert slept and all(s <= 0.05 + 1e-9 for s in slept)
    times = printed_times(out.text)
    assert len(times) > 40 and times == sorted(times)  # the printed times never go backwards
    noisy = [f"{r.name}: {r.getMessage()}" for r in caplog.records
             if r.levelno >= logging.WARNING
             and r.name.startswith(("telethon", "chanwatch.alerts"))]
    assert noisy == []


async def test_the_demo_downloads_each_file_once_and_its_summary_counts_them(tmp_path, no_network):
    demo = build_world(SCENARIO)
    out = _Out()
    summary = await run_demo(speed=None, db_path=tmp_path / "demo.db", out=out, demo=demo)
    world = demo.world
    assert world.files and {fid: world.bytes_served[fid] for fid in world.files} == {
        fid: file.size for fid, file in world.files.items()}  # every file downloaded exactly once
    assert (summary.media_files, summary.media_bytes, summary.media_saved) == (
        MEDIA_FILES, MEDIA_BYTES, MEDIA_SAVED)
    assert re.search(rf"^  media files stored +{MEDIA_FILES} \({MEDIA_BYTES / 1000:.1f} KB\)$", out.text,
                     re.M)
    assert re.search(rf"^  downloads saved by forwards +{MEDIA_SAVED}  ", out.text, re.M)
    stored = sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file())
    assert sorted(p.stat().st_size for p in stored) == sorted(f.size for f in world.files.values())
    assert {p.suffix for p in stored} == {".jpg", ".pdf"}
    lines = re.findall(r"^\d\d:\d\d  media job: (\d+) files? downloaded", out.text, re.M)
    assert sum(map(int, lines)) == MEDIA_FILES
    assert f"its media files in {tmp_path / 'media'}/" in out.text


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


# --- command line ---------------------------------------------------------------------------------


async def test_the_day_befores_posts_are_archived_and_never_alerted_even_when_a_rule_matches(no_network):
    history = Event("-1 18:00", "post", "mfa", text="Sanctions, announced yesterday", label="old")
    hello = Event("07:00", "say", text="/start")  # a bot can write only to a chat that wrote to it
    today = Event("08:00", "post", "mfa", text="Sanctions, announced today", label="new")
    out = _Out()
    summary = await run_demo(speed=None, out=out, scenario=replace(SCENARIO, events=(history, hello, today)))
    assert (summary.posts, summary.alerts_sent) == (2, 1)
    assert "(from the days before: 1 post already in the channels. It does not alert" in out.text
    assert f"finds it over {ALERT_MAX_AGE_HOURS} h old" in out.text and "CHANWATCH_ALERT_MAX_AGE" in out.text
    alerts = [b for b in _blocks(out.text) if "Matched rule" in b]
    assert len(alerts) == 1 and "announced today" in alerts[0]


def test_demo_help_lists_db(capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["demo", "--help"])
    assert done.value.code == 0
    assert re.search(r"^  --db PATH\s+keep the demo's archive in PATH", capsys.readouterr().out, re.M)


def test_demo_refuses_an_existing_archive_and_loses_nothing(tmp_path, capsys):
    existing = tmp_path / "mine.db"
    existing.write_bytes(b"precious")
    assert cli.main(["demo", "--speed", "max", "--db", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"precious"


def test_demo_never_writes_to_the_default_archive(tmp_path, capsys, monkeypatch, no_network):
    real = tmp_path / "real.db"
    monkeypatch.setenv("CHANWATCH_DB", str(real))
    assert cli.main(["demo", "--speed", "max", "--color", "never"]) == 0
    assert not real.exists()
    assert "The archive was temporary" in capsys.readouterr().out


def test_only_an_explicit_db_keeps_the_demo_archive(clean_env, tmp_path):
    (tmp_path / ".env").write_text("CHANWATCH_DB=real.db\n", encoding="utf-8")
    clean_env.setenv("CHANWATCH_DB", str(tmp_path / "also-real.db"))
    assert demo_archive(build_parser().parse_args(["demo"])) is None
    assert demo_archive(build_parser().parse_args(["demo", "--db", "new.db"])) == Path("new.db")
    assert demo_archive(build_parser().parse_args(["--db", "new.db", "demo"])) == Path("new.db")


@pytest.mark.parametrize("text, expected", [("max", None), ("MAX", None), ("960", 960.0), ("0.5", 0.5)])
def test_speed_is_a_positive_number_or_max(text, expected):
    assert parse_speed(text) == expected


@pytest.mark.parametrize("bad", ["0", "-3", "fast", "inf", "nan"])
def test_a_bad_speed_is_a_usage_error(bad, capsys):
    assert cli.main(["demo", "--speed", bad]) == 2
    assert "--speed" in capsys.readouterr().err


def test_summary_text_says_where_the_archive_is_and_how_to_search_it(tmp_path):
    kept = DemoSummary(posts=3, sightings=5, edited=0, deleted=0, alerts_sent=1, alerts_pending=0,
                       bot_messages=2, search_replies=1, archive=tmp_path / "d.db")
    text = summary_text(kept)
    assert re.search(r"^  duplicates avoided +2  ", text, re.M)
    assert f"chanwatch --db {tmp_path / 'd.db'} search 'sanctions OR санкции'" in text
    assert "--db demo.db" in summary_text(replace(kept, archive=None))
    assert "chanwatch --db demo.db serve" in summary_text(replace(kept, archive=None))
