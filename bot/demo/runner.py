"""`chanwatch demo`: the real daemon (`bot.service.Service`) against a simulated Telegram, for one sample day.

Nothing here is a stand-in for the daemon: the same Service, scheduler, poller, percolator,
dispatcher and bot commands as `chanwatch run`, with real Telethon clients whose network is the
in-process simulator (`bot.simulator`). Only the clock differs: the World's clock runs the sample
day from `scenario.begins` to `scenario.ends`, either paced (`speed` simulated seconds per real
second; the service's interval jobs are divided by the same factor) or as fast as possible
(`speed=None`: the clock jumps from one event or due job to the next). Either way `JobDriver`
makes sure every interval job runs at least once per simulated period, so the archive, alerts
and summary are the same at any speed.

One channel (the scenario's `source="web"`) is read as a no-account user would: the World is
served as t.me pages by `bot.simulator.web.WebPreviewServer` on 127.0.0.1 and the daemon's web reader
reads them; the others through the reading account, with live updates.

What the terminal shows: each event in the channels (dim), each message the bot sent to the
subscriber, framed as it would read in Telegram, a line when the daemon's media job has stored
files (dim), and a summary read back from the archive (media too: the store is `media/` beside it). Lines
come in simulated-time order: at a paced speed the scheduler also runs jobs on its own while the
demo waits for the next tick, and what the bot sent then is shown before the tick's events.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import TelegramClient

from bot.config import Settings, media_dir_of
from bot.post_text import sighting_name, views_curve
from bot.simulator import connect_client
from bot.simulator.web import WebPreviewServer
from bot.web.http import WebClient
from storage.database import Database
from storage.engagement import most_read_post, readings_taken
from storage.identity import set_source
from storage.media_queue import downloads_saved, media_status
from storage.outbox import counts, sent_delays
from storage.post_record import post_record
from storage.sparkline import duration_text
from storage.stats import archive_stats

from .driver import JobDriver
from .render import DIM, render_message, style
from .scenario import SCENARIO, Scenario, validate
from .timeline import DemoWorld, Happened, Timeline, build_world

__all__ = ["ALERT_MAX_AGE_HOURS", "DEFAULT_SPEED", "POLL_INTERVAL", "RECHECK_INTERVAL", "DemoSummary",
           "Screen", "run_demo", "summary_text"]

log = logging.getLogger("chanwatch.demo")

#: Simulated seconds per real second by default: the 16-hour sample day in about a minute.
DEFAULT_SPEED = 960.0
#: The daemon's settings for the demo, in simulated seconds.
POLL_INTERVAL = 300
RECHECK_INTERVAL = 1800
#: CHANWATCH_ALERT_MAX_AGE for the demo: the day before's posts are over 12 h old when the first poll
#: finds them, so they are history (archived, never alerted) whichever rules they match.
ALERT_MAX_AGE_HOURS = 6
#: CHANWATCH_LEASE_SECONDS for the demo: a day. The demo is one reader, and its paced clock moves in
#: steps of TICK × speed simulated seconds (200 s at 4000×), longer than the default 60 s lease: a
#: lease would lapse between two steps (and with it the dispatcher role, disconnecting the bot under
#: an alert being sent) whenever a loaded machine delays the claim.
LEASE_SECONDS = 24 * 3600
#: Real seconds between two steps of the paced clock.
TICK = 0.05

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the day left in the archive and the subscriber's chat."""

    posts: int
    sightings: int
    edited: int
    deleted: int
    alerts_sent: int
    alerts_pending: int
    bot_messages: int
    search_replies: int
    archive: Path | None
    media_files: int = 0
    media_bytes: int = 0
    media_saved: int = 0
    alert_delays: tuple[float, ...] = ()  # simulated seconds from each new post to its alert
    readings: int = 0  # engagement readings taken
    curve_post: int | None = None  # the post whose engagement the summary shows
    curves: tuple[str, ...] = ()  # its sightings' curves, "name: sparkline …"
    clock_step: float | None = None  # simulated seconds the paced clock moves per step (None: max speed)

    @property
    def duplicates_avoided(self) -> int:
        """Sightings stored as one post with another (forwards and copies): sightings - posts."""
        return self.sightings - self.posts


def demo_settings(demo: DemoWorld, scenario: Scenario, db_path: Path) -> Settings:
    """The daemon's configuration for the demo, as CHANWATCH_* variables would give it."""
    subscriber = demo.subscriber.id
    return Settings(
        db_path=db_path,
        channels=tuple(spec.username for spec in scenario.channels),
        admins=frozenset({subscriber}),
        alert_chat=subscriber,
        keywords=scenario.subscriber.rules,
        poll_interval=POLL_INTERVAL,
        recheck_interval=RECHECK_INTERVAL,
        alert_max_age_hours=ALERT_MAX_AGE_HOURS,
        join=True,
        flood_max_wait=60,
        source="api",  # the demo's reader is logged in already: no session setting says so
        lease_seconds=LEASE_SECONDS,
    )


class Screen:
    """Prints the day as it happens: channel events, and the bot's messages to the subscriber, in
    simulated-time order."""

    def __init__(self, demo: DemoWorld, out: TextIO, color: bool) -> None:
        self.demo = demo
        self.out = out
        self.color = color
        self.seen = 0
        self.bot_messages = 0
        self.replies_after_say = 0
        self.media_done = 0

    def line(self, text: str = "", *, dim: bool = False) -> None:
        self.out.write((style(text, DIM, self.color) if dim else text) + "\n")
        self.out.flush()

    def happened(self, events: list[Happened]) -> None:
        """Print events the timeline just performed. What the bot sent before them comes first: it
        was sent while the clock stood before these events (the timeline moves the clock with no
        await between its events and this call), e.g. by a job the scheduler ran on its own."""
        if events:
            self.bot_output()
        for event in events:
            self.line(f"{event.when:%H:%M}  {event.description}", dim=event.event.kind != "say")

    def media(self, when: datetime, done: int, stored_bytes: int) -> None:
        """A dim line when the media job has stored more files since the last call."""
        if done > self.media_done:
            new = done - self.media_done
            files = "1 file" if new == 1 else f"{new} files"
            self.line(f"{when:%H:%M}  media job: {files} downloaded into the media store "
                      f"({done} in all, {stored_bytes / 1000:.1f} KB)", dim=True)
        self.media_done = done

    def bot_output(self, *, replies: bool = False) -> None:
        """Print the bot's messages to the subscriber that are new since the last call (`replies`:
        they answer a command the subscriber just typed)."""
        world, bot, subscriber = self.demo.world, self.demo.bot, self.demo.subscriber
        log_entries = world.chat_log(subscriber, with_=bot)
        for entry in log_entries[self.seen:]:
            if entry.sender_id != bot.id:
                continue
            self.bot_messages += 1
            if replies:
                self.replies_after_say += 1
            self.line(render_message(entry, sender=f"@{bot.username}", recipient=subscriber.first_name,
                                     when=entry.date, color=self.color))
        self.seen = len(log_entries)


async def run_demo(
    *,
    speed: float | None = DEFAULT_SPEED,
    db_path: Path | None = None,
    out: TextIO = sys.stdout,
    color: bool = False,
    scenario: Scenario = SCENARIO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    demo: DemoWorld | None = None,
) -> DemoSummary:
    """Play `scenario` against the real daemon and print it to `out`; returns the summary.

    `speed`: simulated seconds per real second, or None for as fast as possible. `db_path`: keep
    the archive there (it must not exist yet); None uses a temporary file, removed at the end.
    `clock`/`sleep` pace the day (injectable for tests); `demo`: a World `build_world(scenario)` made,
    to inspect afterwards (a fresh one by default).
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    validate(scenario)
    temp_dir = None
    if db_path is None:
        temp_dir = tempfile.TemporaryDirectory(prefix="chanwatch-demo-")
        path = Path(temp_dir.name) / "demo.db"
    else:
        path = db_path
    try:
        return await _run(scenario, speed, path, out, color, clock, sleep, keep=db_path is not None,
                          demo=demo or build_world(scenario))
    finally:
        if temp_dir is not None:
            temp_dir.cleanup()


async def _run(scenario: Scenario, speed: float | None, path: Path, out: TextIO, color: bool,
               clock: Callable[[], float], sleep: Sleep, *, keep: bool, demo: DemoWorld) -> DemoSummary:
    from bot.service import Service  # the daemon under demonstration

    world = demo.world
    timeline = Timeline(demo, scenario)
    screen = Screen(demo, out, color)
    _intro(screen, scenario, demo, speed)
    history = timeline.apply_until(scenario.begins - timedelta(seconds=1))  # the daemon starts at `begins`
    world.now = scenario.begins
    for line in _history_lines(len(history)):
        screen.line(line, dim=True)

    db = await Database.open(path)
    clients: list[TelegramClient] = []
    service = None
    pages = WebPreviewServer(world, peer_ids=True)  # t.me/s pages of the World, as t.me serves them
    web: WebClient | None = None
    try:
        for spec in scenario.channels:  # `chanwatch channels add NAME --source web`
            if spec.source == "web":
                await db.transaction(set_source, spec.username, "web")
        clients.append(await connect_client(world, as_user=demo.reader, flood_sleep_threshold=0))
        clients.append(await connect_client(world, as_user=demo.bot, bot=True, flood_sleep_threshold=0))
        user, bot = clients
        time_scale = speed or 1.0
        scheduler = AsyncIOScheduler(timezone=UTC)
        driver = JobDriver(scheduler, lambda: world.now, time_scale=time_scale, min_period=POLL_INTERVAL)

        async def simulated_sleep(seconds: float) -> None:
            """The daemon's sleeps (alert pacing, flood waits) pass at the demo's speed."""
            await sleep(seconds / speed if speed else 0)

        await pages.start()
        web = WebClient(pages.url, now=lambda: world.now, sleep=simulated_sleep)
        service = Service(demo_settings(demo, scenario, path), db, user, bot, web=web, scheduler=scheduler,
                          now=lambda: world.now, time_scale=time_scale, sleep=simulated_sleep,
                          logger=logging.getLogger("chanwatch.service"))
        await service.start()
        _missing_parts(screen, service)
        await _play(timeline, driver, screen, world, scenario, speed, clock, sleep, db)
        await driver.run_all()  # the day is over: one last recheck, poll, media run and send
        await _settle(world)
        screen.bot_output()
        await _media_line(screen, world, db)
        await service.stop()
        driver.close()
        summary = await db.run(_count, screen.bot_messages, screen.replies_after_say, path if keep else None,
                               TICK * speed if speed else None)
    finally:
        if service is not None:
            await service.stop()
        if web is not None:
            await web.aclose()
        await pages.close()
        await world.close()
        await db.close()
    screen.line()
    screen.line(summary_text(summary, scenario))
    return summary


async def _play(timeline: Timeline, driver: JobDriver, screen: Screen, world: Any, scenario: Scenario,
                speed: float | None, clock: Callable[[], float], sleep: Sleep, db: Database) -> None:
    """Move the World's clock through the day, performing events and running due jobs."""
    started_real = clock()
    started_sim = world.now
    last_target: datetime | None = None
    while world.now < scenario.ends:
        if speed is None:
            candidates = [scenario.ends, timeline.next_at, driver.next_due()]
            target = max(min(t for t in candidates if t is not None), world.now)
            if last_target is not None and target <= last_target:
                target = last_target + timedelta(seconds=1)  # nothing moved (a job could not run)
            last_target = target
        else:
            await sleep(TICK)
            elapsed = (clock() - started_real) * speed
            target = min(started_sim + timedelta(seconds=elapsed), scenario.ends)
        happened = timeline.apply_until(target)
        screen.happened(happened)
        said = any(h.event.kind == "say" for h in happened)
        if said:
            await _settle(world)  # the bot answers the command before the jobs run
            screen.bot_output(replies=True)
        await driver.run_due()
        await _settle(world)
        screen.bot_output()
        await _media_line(screen, world, db)


async def _media_line(screen: Screen, world: Any, db: Database) -> None:
    status = await db.run(media_status)
    screen.media(world.now, status.done, status.stored_bytes)


async def _settle(world: Any, timeout: float = 6.0) -> None:
    """Let the clients process what the World pushed. Under a busy paced scheduler this may not go
    quiet within `timeout`; the demo then goes on (output shows a step later)."""
    try:
        await world.settle(timeout=timeout)
    except RuntimeError:
        log.debug("the simulated clients are still busy; going on")


def _intro(screen: Screen, scenario: Scenario, demo: DemoWorld, speed: float | None) -> None:
    pace = "as fast as possible" if speed is None else f"at {speed:g}× ({_duration(scenario, speed)})"
    channels = ", ".join(f"@{spec.username}" for spec in scenario.channels)
    screen.line(f"chanwatch demo — a simulated day, {scenario.begins:%Y-%m-%d %H:%M}–{scenario.ends:%H:%M} "
                f"UTC, {pace}")
    screen.line(f"Watching {channels} in an offline, simulated Telegram.", dim=True)
    web = [f"@{spec.username}" for spec in scenario.channels if spec.source == "web"]
    if web:
        screen.line(f"{', '.join(web)} is read without an account, from its public web preview (t.me/s/…); "
                    "the others through the reading account, live.", dim=True)
    rules = "; ".join(scenario.subscriber.rules)
    screen.line(f"{demo.subscriber.first_name} (@{demo.subscriber.username}) gets alerts from "
                f"@{demo.bot.username} for: {rules}", dim=True)
    screen.line()


def _history_lines(count: int) -> list[str]:
    """What the terminal says of the posts from before the day: the first poll archives them, and why
    they alert no one (the demo's CHANWATCH_ALERT_MAX_AGE)."""
    if not count:
        return []
    posts, they, them = ("1 post", "It does", "it") if count == 1 else (f"{count} posts", "They do", "them")
    return [f"(from the days before: {posts} already in the channels. {they} not alert: the first poll",
            f" finds {them} over {ALERT_MAX_AGE_HOURS} h old, and older posts are history, not news — "
            "CHANWATCH_ALERT_MAX_AGE)"]


def _duration(scenario: Scenario, speed: float) -> str:
    seconds = (scenario.ends - scenario.begins).total_seconds() / speed
    return f"about {seconds:.0f} s" if seconds < 120 else f"about {seconds / 60:.0f} min"


def _missing_parts(screen: Screen, service: Any) -> None:
    """Say so when this checkout lacks a part of the daemon (the demo then shows what exists)."""
    for attribute, what in (("percolator", "rule matching (storage.percolator)"),
                            ("dispatcher", "alert sending (bot.alerts)"),
                            ("commands", "bot commands (bot.commands)")):
        if getattr(service, attribute, None) is None:
            screen.line(f"note: {what} is not available in this build; the demo runs without it")


def _count(conn: sqlite3.Connection, bot_messages: int, search_replies: int, archive: Path | None,
           clock_step: float | None = None) -> DemoSummary:
    stats = archive_stats(conn, datetime.now(UTC))
    alerts = counts(conn)
    media = media_status(conn)
    curve_post = most_read_post(conn)
    record = post_record(conn, curve_post) if curve_post is not None else None
    curves = tuple(f"{sighting_name(s)}: {views_curve(s)}" for s in record.sightings) if record else ()
    return DemoSummary(
        posts=stats.posts,
        sightings=stats.sightings,
        edited=stats.edited_messages,
        deleted=stats.deletions,
        alerts_sent=alerts["sent"],
        alerts_pending=alerts["pending"] + alerts["failed"],
        bot_messages=bot_messages,
        search_replies=search_replies,
        archive=archive,
        media_files=media.stored_files,
        media_bytes=media.stored_bytes,
        media_saved=downloads_saved(conn),
        alert_delays=tuple(sent_delays(conn)),
        readings=readings_taken(conn),
        curve_post=curve_post,
        curves=curves,
        clock_step=clock_step,
    )


def _delays_text(delays: tuple[float, ...], clock_step: float | None) -> str:
    """'median 0 s, max 12 s after the post …': how long new posts took to reach the chat, on the
    demo's clock (a paced clock moves in steps, and a post is handled at the end of its step)."""
    if not delays:
        return "no alert on a new post"
    ordered = sorted(delays)
    median = ordered[len(ordered) // 2]
    step = f" in {duration_text(clock_step)} clock steps" if clock_step else ""
    return (f"median {duration_text(median)}, max {duration_text(ordered[-1])} after the post  "
            f"(live updates{step}; a poll: up to {duration_text(POLL_INTERVAL)})")


def summary_text(summary: DemoSummary, scenario: Scenario = SCENARIO) -> str:
    """The closing summary: counts, and how to search the archive afterwards."""
    rows = [
        ("posts", f"{summary.posts}"),
        ("sightings", f"{summary.sightings}  (messages seen in the channels)"),
        ("duplicates avoided", f"{summary.duplicates_avoided}  (forwards and copies stored once, "
                               "alerted once)"),
        ("edited messages", f"{summary.edited}  (earlier versions kept)"),
        ("deleted messages", f"{summary.deleted}  (kept, marked deleted)"),
        ("alerts sent", f"{summary.alerts_sent}" + (f"  ({summary.alerts_pending} still queued)"
                                                    if summary.alerts_pending else "")),
        ("alert delay", _delays_text(summary.alert_delays, summary.clock_step)),
        ("engagement readings", f"{summary.readings}  (views and reactions re-read 1 h, 3 h, 6 h… "
                                "after posting)"),
        ("bot messages", f"{summary.bot_messages}  (alerts and replies to commands)"),
        ("media files stored", f"{summary.media_files} ({summary.media_bytes / 1000:.1f} KB)"),
        ("downloads saved by forwards", f"{summary.media_saved}  (forwarded files downloaded once)"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["Summary"] + [f"  {name:<{width}}  {value}" for name, value in rows]
    if summary.curves:
        lines += ["", f"How far post {summary.curve_post} travelled: the views of each sighting over the day",
                  f"(chanwatch show {summary.curve_post} prints its whole record)"]
        lines += [f"  {curve}" for curve in summary.curves]
    query = scenario.subscriber.rules[0] if scenario.subscriber.rules else "sanctions"
    if summary.archive is not None:
        media = media_dir_of(None, summary.archive)
        lines += ["", f"The archive is kept in {summary.archive} (its media files in {media}/). Search it:",
                  f"  chanwatch --db {summary.archive} search '{query}'",
                  f"  chanwatch --db {summary.archive} show {summary.curve_post or 1}",
                  f"  chanwatch --db {summary.archive} stats",
                  "See how the ministry's posts travelled, as a report with charts and in a browser:",
                  f"  chanwatch --db {summary.archive} report amplification --format html"
                  " --out amplification.html",
                  f"  chanwatch --db {summary.archive} serve    (then open http://127.0.0.1:8001/)"]
    else:
        lines += ["", "The archive was temporary and is gone. Keep it with --db, then search it, or open it"
                  " in a browser:",
                  "  chanwatch demo --speed max --db demo.db",
                  f"  chanwatch --db demo.db search '{query}'",
                  "  chanwatch --db demo.db serve"]
    return "\n".join(lines)
