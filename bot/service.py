"""The daemon: poller, percolator, dispatcher and bot commands wired together under one scheduler.

`Service` owns the running parts for one archive and the clients the configuration has (each
optional): the user session that reads channels through the API, the bot that answers and alerts,
and the web-preview client that reads channels with no account (`docs/architecture.md`, "Modes").
The jobs that need the reading account (API poll, recheck, sweep, engagement, media, live updates,
resolving names) run only with it; the `web` and `web recheck` jobs read the channels whose source
is 'web' through `bot.web.reader.WebReader`; without a bot there are no commands and no dispatcher,
and the `outbox log` job prints each pending alert once instead (`bot.alert_log`).
Jobs run on an APScheduler `AsyncIOScheduler`:
poll (CHANWATCH_POLL_INTERVAL), recheck (CHANWATCH_RECHECK_INTERVAL), the slow deletion sweep
(every 5 min unless CHANWATCH_SWEEP_PER_HOUR=0), engagement re-reads (every 5 min unless
CHANWATCH_STATS_DAYS=0), media downloads (every 30 s unless CHANWATCH_MEDIA=none), the dispatcher's
instant and digest jobs. Every job has max_instances=1 and coalesce=True, and every job body catches
and logs its own errors, so nothing crashes the daemon.
With CHANWATCH_JOIN, `bot.live.Live` also takes the joined channels' pushed updates: stored at
once, the dispatcher woken (`alerts_now`), a poll after a reconnection (`poll_now`).

Several readers, one archive (`bot.leases`, docs/architecture.md "Several readers"): every job that
reads channels reads only those this reader holds the lease of (`mine`); the leases are claimed at
start and every third of CHANWATCH_LEASE_SECONDS (the `leases` job), and released on a clean stop.
Only the reader holding the 'dispatcher' role keeps its bot connected, answers commands and sends
alerts; another reader with a bot waits with it disconnected and takes over when the role lapses.

Graceful stop: APScheduler 3's `AsyncIOExecutor.shutdown` *cancels* running coroutine jobs (it
cannot await them). The service installs `GracefulExecutor`, whose shutdown leaves them running,
and `stop()` awaits them: the poll in flight finishes its transaction, then the clients go. A media
download in flight is cancelled instead (it may take minutes): its writer leaves no file, and the
file stays due for the next start.

`chanwatch run` (`bot.daemon`, `bot.cli.daemon`) connects the clients and serves a `Service`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from telethon import TelegramClient

from bot.alert_log import AlertLog, expire_stale
from bot.alerts import Dispatcher
from bot.clock import Clock, Sleep, utcnow
from bot.commands import Commands
from bot.config import Settings, resolve_source
from bot.engagement import Engagement
from bot.leases import LeaseKeeper, default_reader_name
from bot.live import Live, Wakeup
from bot.media import Downloader, MediaPolicy, media_job
from bot.poller import Poller
from bot.resolve import WatchList, unwatch, watch_by_web
from bot.sweep import SWEEP_EVERY, Sweeper
from bot.telegram import FloodPolicy, RequestTimeout, answered_within
from bot.web.http import WebClient
from bot.web.reader import WebReader, source_of
from storage import channels, leases
from storage.database import Database
from storage.faults import explain
from storage.media_store import MediaStore
from storage.percolator import Percolator
from storage.records import ChannelState
from storage.rules import seed_alert_chat

__all__ = [
    "EXECUTOR",
    "GracefulExecutor",
    "Service",
]

log = logging.getLogger("chanwatch.service")

EXECUTOR = "chanwatch"  # executor alias used when a given scheduler already has a "default" executor
COMMAND_DRAIN_SECONDS = 10.0  # how long a stop waits for bot commands being answered
INSTANT_EVERY = 5.0  # seconds between instant-alert dispatch runs (divided by time_scale)
MEDIA_EVERY = 30.0  # seconds between media download runs (divided by time_scale)
MEDIA_JOB = "media"
LEASE_JOB = "leases"
CLAIMS_PER_PERIOD = 3  # claims a lease period: two may fail before the leases lapse
ENGAGEMENT_EVERY = 300.0  # seconds between engagement rounds (divided by time_scale)
OUTBOX_LOG_EVERY = 5.0  # seconds between runs printing pending alerts when no bot exists


class GracefulExecutor(AsyncIOExecutor):
    """An AsyncIOExecutor whose shutdown lets running coroutine jobs finish instead of cancelling them.

    `Service.stop` awaits `running()` after the scheduler stops, so a poll in the middle of a
    transaction completes and nothing is lost. Relies on AsyncIOExecutor's `_pending_futures`
    (the set of running job tasks in APScheduler 3.x).
    """

    def shutdown(self, wait: bool = True) -> None:
        """Do not cancel running jobs (the owner awaits them)."""

    def running(self) -> list[asyncio.Future]:
        """Job tasks that have not finished yet."""
        return [f for f in getattr(self, "_pending_futures", ()) if not f.done()]


class Service:
    """The daemon's parts wired together: poller, percolator, dispatcher, commands, scheduler."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        user: TelegramClient | None,
        bot: TelegramClient | None,
        *,
        web: WebClient | None = None,
        scheduler: AsyncIOScheduler | None = None,
        now: Clock = utcnow,
        time_scale: float = 1.0,
        logger: logging.Logger = log,
        sleep: Sleep = asyncio.sleep,
        flood: FloodPolicy | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.settings = settings
        self.db = db
        self.user = user
        self.bot = bot
        self.web = web
        self.scheduler = scheduler or AsyncIOScheduler(timezone=UTC)
        self.now = now
        self.time_scale = time_scale
        self.log = logger
        self.sleep = sleep
        self.flood = flood or FloodPolicy(max_wait=float(settings.flood_max_wait))
        hours = settings.alert_max_age_hours
        self.percolator = Percolator(max_age=timedelta(hours=hours) if hours else None)
        # the reading account's parts: none without a user session
        self.poller: Poller | None = None
        self.watchlist: WatchList | None = None
        self.sweeper: Sweeper | None = None
        self.engagement: Engagement | None = None
        self.leases = LeaseKeeper(db, settings.reader or default_reader_name(),  # a period on `now`'s clock
                                  timedelta(seconds=settings.lease_seconds),
                                  wants_role=bot is not None, now=now, logger=logger)
        if user is not None:
            self.poller = Poller(db, user, self.flood, join=settings.join, now=now, sleep=sleep,
                                 after_ingest=self.percolator, reads=self.reads_by_api)
            self.watchlist = WatchList(db, user, settings.channels, join=settings.join, flood=self.flood,
                                       now=now, sleep=sleep, default_source=self.default_source)
            self.watchlist.held = lambda: self.leases.held  # it resolves the channels this reader holds
            self.sweeper = Sweeper(db, user, settings.sweep_per_hour, window_ids=settings.recheck_window_ids,
                                   window_days=float(settings.recheck_window_days), now=now, sleep=sleep,
                                   after_ingest=self.percolator, reads=self.reads_by_api,
                                   ) if settings.sweep_per_hour else None
            self.engagement = Engagement(
                db, user, self.flood, days=settings.stats_days, now=now, sleep=sleep, reads=self.reads_by_api,
            ) if settings.stats_days else None
        self.web_reader: WebReader | None = None  # made at the first channel read by web
        self.alert_log: AlertLog | None = None  # no bot: pending alerts printed in the log
        self.dispatcher: Dispatcher | None = None
        self.live: Live | None = None  # CHANWATCH_JOIN: pushed updates ingested at once (bot/live.py)
        self._poll_lock = asyncio.Lock()  # the poll job and a reconnection's poll never overlap
        self.poll_now = Wakeup(self.poll_cycle, "poll", logger=logger)
        self.alerts_now: Wakeup | None = None  # the dispatcher woken by a live ingest
        self.downloader: Downloader | None = None
        self._media_task: asyncio.Task | None = None
        self._media_body: Callable[[], Awaitable[None]] | None = None
        self.commands: Commands | None = None
        self.executor: GracefulExecutor | None = None
        self._commanding = False  # the commands are registered (this reader is the dispatcher)
        self._executor_alias = "default"
        self._started = False
        self._stopping = False
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Seed the alert chat and its keyword rules, resolve (and join) channels, wire the alert
        parts, register the bot commands and start the scheduler jobs."""
        if self._started:
            return
        self._started = True
        await self._seed_alert_chat()
        self._use_account(await self._account_id())
        if self.watchlist is not None:
            await self.watchlist.resolve_configured()
        else:
            await self._watch_configured_by_name()
        await self.leases.claim()
        if self.bot is not None:
            await expire_stale(self.db, self.settings.alert_max_age_hours, self.now(), self.log)
        self._build_alerting()
        self._build_media()
        self._install_executor()
        self._add_jobs()
        await self._follow_role()
        if not self.scheduler.running:
            self.scheduler.start()
        await self._start_live()
        self.log.info("service started: %d jobs, poll every %gs, recheck every %gs; channels read by %s "
                      "by default; %s", len(self.scheduler.get_jobs()),
                      self.settings.poll_interval / self.time_scale,
                      self.settings.recheck_interval / self.time_scale, self.default_source,
                      "alerts sent by the bot" if self.bot is not None
                      else "no bot: alerts are printed in this log and wait in the outbox")

    async def stop(self) -> None:
        """Stop taking new work, let the running jobs finish (their transactions commit), stop the
        scheduler and unregister the commands. The clients and the archive stay open (the caller's)."""
        if self._stopped:
            return
        self._stopped = self._stopping = True
        if self.live is not None:  # no more updates taken; the live ingests in flight commit
            await self.live.stop()
        if self.commands is not None:
            try:  # commands being answered now may finish (bounded); then no new ones are taken
                await asyncio.wait_for(self.commands.drain(), COMMAND_DRAIN_SECONDS)
            except (TimeoutError, Exception):
                self.log.warning("bot commands still running after %gs are cancelled", COMMAND_DRAIN_SECONDS)
            try:
                if self._commanding:
                    self.commands.unregister()
            except Exception:
                self.log.exception("could not unregister the bot commands")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # deferred to the loop; GracefulExecutor cancels nothing
        await asyncio.sleep(0)
        if self._media_task is not None and not self._media_task.done():
            self.log.info("media download in flight cancelled; its file stays due")
            self._media_task.cancel()
        running = self.executor.running() if self.executor is not None else []
        if running:
            self.log.info("waiting for %d running job(s) to finish", len(running))
        while running:
            await asyncio.wait(running)
            running = self.executor.running() if self.executor is not None else []
        await self.poll_now.wait()
        if self.alerts_now is not None:
            await self.alerts_now.wait()
        await self.leases.release()  # the other readers take its channels at their next claim
        self.log.info("service stopped")

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set, then stop gracefully."""
        try:
            await self.start()
            await stop.wait()
        finally:
            await self.stop()

    # -- job bodies -------------------------------------------------------------------------------

    async def _connected(self, client: TelegramClient, who: str) -> bool:
        """Whether `client` is connected, connecting it again first if Telethon gave up on it (its own
        reconnects after a dropped connection all failed: it then stays disconnected for good)."""
        if client.is_connected():
            return True

        async def reconnect() -> None:
            await client.disconnect()  # ends what Telethon left running (its update loop) first
            await client.connect()

        try:
            await answered_within(reconnect(), "a new connection")
        except Exception as exc:  # Telegram out of reach for now: one line, the next cycle tries again
            self.log.warning("%s is not connected to Telegram and could not reconnect (%s: %s); "
                             "the next cycle tries again", who, type(exc).__name__, exc)
            return False
        self.log.warning("%s had lost its connection to Telegram; reconnected", who)
        return True

    async def poll_cycle(self) -> None:
        """One poll over the watched channels (the poller logs a line per channel and per cycle).
        A client whose connection was lost for good is connected again first (the bot's too)."""
        if self._stopping:
            return
        async with self._poll_lock:
            await self._poll_cycle()

    async def _poll_cycle(self) -> None:
        await self._renewed()
        if self.bot is not None and self.leases.is_dispatcher():
            await self._connected(self.bot, "the bot")
        if self.user is None or self.poller is None or self.watchlist is None:
            return  # no reading account: the web job reads the channels
        if not await self._connected(self.user, "the reading account"):
            return
        watchlist, poller = self.watchlist, self.poller

        async def poll() -> None:
            if any(o.channel_id is not None for o in await watchlist.resolve_due()):
                await self.leases.claim()  # a placeholder resolved is a channel with a new id to lease
            await poller.poll_once()

        await self._guarded("poll cycle", "cycle", poll())

    async def _guarded(self, what: str, next_one: str, body: Awaitable[object]) -> None:
        """Run a job body so that nothing it raises stops the daemon: the archive's failure (full,
        locked, I/O) is one line, it is not a bug; anything else is logged with its traceback."""
        try:
            await body
        except sqlite3.Error as exc:
            self.log.warning("%s failed: %s", what, explain(exc, self.db.path, daemon=True))
        except Exception:
            self.log.exception("%s failed; the next %s will try again", what, next_one)

    async def recheck_cycle(self) -> None:
        """Re-read the recent window of every watched channel for edits and deletions."""
        if self._stopping or self.user is None or self.poller is None:
            return
        if not await self._connected(self.user, "the reading account"):
            return
        await self._renewed()
        poller = self.poller

        async def recheck() -> None:
            report = await poller.recheck_once(self.settings.recheck_window_ids,
                                               float(self.settings.recheck_window_days))
            self.log.info("recheck cycle: %d channels, %d edited, %d deleted, %d requests",
                          len(report.channels), sum(c.edited for c in report.channels),
                          sum(c.deleted for c in report.channels), report.requests)

        await self._guarded("recheck cycle", "cycle", recheck())

    async def sweep_cycle(self) -> None:
        """One run of the slow deletion sweep: its share of CHANWATCH_SWEEP_PER_HOUR (`bot.sweep`)."""
        if self.sweeper is None or self._stopping or self.user is None or not self.user.is_connected():
            return  # a lost connection: the poll cycle reconnects
        await self._renewed()
        await self._guarded("sweep", "run", self.sweeper.run_once())

    async def engagement_cycle(self) -> None:
        """One engagement round (`bot.engagement`): due views and reactions into message_stats."""
        if self.engagement is None or self._stopping or self.user is None or not self.user.is_connected():
            return  # a lost connection: the poll cycle reconnects, the next round reads what is due
        await self._renewed()
        await self._guarded("engagement round", "round", self.engagement.run_once())

    async def outbox_log_cycle(self) -> None:
        """No bot: print each pending alert not logged yet, once (`bot.alert_log`)."""
        if self.alert_log is not None and not self._stopping:
            await self.alert_log.log_pending()

    async def media_cycle(self) -> None:
        """One media download run (`bot.media.Downloader.run_once`); `stop` may cancel it."""
        if self._media_body is None or self._stopping or self.user is None or not self.user.is_connected():
            return  # a lost connection: the poll cycle reconnects, the next media run goes on
        await self._renewed()
        self._media_task = asyncio.current_task()
        try:
            await self._media_body()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._media_task = None

    @property
    def default_source(self) -> str:
        """How a channel with no source of its own is read: 'api' or 'web' (CHANWATCH_SOURCE; auto is
        the API when this service has a reading account, whatever made it)."""
        return resolve_source(self.settings.source, self.user is not None)

    def reads_by_web(self, state: ChannelState) -> bool:
        """Whether the web job reads this channel (its own source, else the default), and so the
        API poller does not."""
        return source_of(state, self.default_source) == "web"

    def reads_by_api(self, state: ChannelState) -> bool:
        """Whether this reader's account reads this channel now: not by its web preview, and this
        reader holds its lease (`bot.leases`)."""
        return not self.reads_by_web(state) and self.leases.mine(state.id)

    def _live_reads(self, state: ChannelState) -> bool:
        """Whether a pushed update of this channel is stored: read by the API and leased to this reader
        at its last claim (a live update is no request: storing one twice is harmless, none is lost)."""
        return not self.reads_by_web(state) and state.id in self.leases.held

    async def web_states(self) -> list[ChannelState]:
        """The watched channels this reader reads through the web preview (none without a web client)."""
        if self.web is None:
            return []
        return [s for s in await self.db.run(channels.load_watched)
                if self.reads_by_web(s) and self.leases.mine(s.id)]

    def _reader(self) -> WebReader:
        """The web reader, made when a channel first reads by web."""
        if self.web_reader is None:
            self.web_reader = WebReader(self.db, self.web, now=self.now, after_ingest=self.percolator,
                                        fetch_origins=self.settings.fetch_origins, logger=self.log)
        return self.web_reader

    async def web_cycle(self) -> None:
        """One web-preview poll of the channels read by web (`WebReader.poll_once`); with no reading
        account, the bot's lost connection is restored here (the API poll does it otherwise)."""
        if self._stopping:
            return
        await self._renewed()
        if self.bot is not None and self.user is None and self.leases.is_dispatcher():
            await self._connected(self.bot, "the bot")
        async def poll() -> None:
            if states := await self.web_states():
                await self._reader().poll_once(states)

        await self._guarded("web poll", "cycle", poll())

    async def web_recheck_cycle(self) -> None:
        """Re-read the newest pages of the channels read by web for edits and deletions."""
        if self._stopping:
            return
        await self._renewed()

        async def recheck() -> None:
            if states := await self.web_states():
                await self._reader().recheck_once(states, self.settings.recheck_window_ids)

        await self._guarded("web recheck", "cycle", recheck())

    async def lease_cycle(self) -> None:
        """Claim this reader's leases (and the dispatcher role); follow a change of role."""
        if self._stopping:
            return
        await self.leases.claim()
        try:
            await self._follow_role()
        except Exception:  # the bot could not be started or stopped: the next claim tries again
            self.log.exception("could not follow this reader's role as the dispatcher")

    async def _renewed(self) -> None:
        """Claim first when the last claim is a third of a period old: every job that reads channels
        or sends alerts starts on fresh leases, whatever the lease job's timing."""
        if self.leases.due(CLAIMS_PER_PERIOD):
            await self.lease_cycle()

    async def _dispatching(self) -> bool:
        """Whether this reader sends the alerts now (the dispatcher role, renewed when due)."""
        await self._renewed()
        return self.leases.is_dispatcher()

    async def _follow_role(self) -> None:
        """Answer commands with a connected bot while this reader is the dispatcher; else keep the bot
        disconnected, so that only one process takes the bot's updates."""
        if self.bot is None or self.commands is None or self._stopping:
            return
        if self.leases.is_dispatcher() and not self._commanding:
            await self._connected(self.bot, "the bot")
            self.commands.register()
            self._commanding = True
            try:  # publish_menu logs Telegram's refusals; an answer that never comes must not stop the start
                await answered_within(self.commands.publish_menu(), "SetBotCommandsRequest")
            except RequestTimeout as exc:
                self.log.warning("could not publish the bot's command menu: %s", exc)
        elif not self.leases.is_dispatcher():
            if self._commanding:
                self.commands.unregister()
                self._commanding = False
            if self.bot.is_connected():
                self.log.info("reader %s waits with its bot disconnected: %s runs the bot",
                              self.leases.name, await self._dispatcher_name())
                await self.bot.disconnect()

    async def _dispatcher_name(self) -> str:
        holder = await self.db.run(leases.role_holder, leases.DISPATCHER, self.now())
        return holder or "another reader"

    async def _account_id(self) -> int | None:
        """The reading account's user id (its leases cover the private channels it can read)."""
        if self.user is None:
            return None
        try:
            me = await answered_within(self.user.get_me(input_peer=True), "GetUsersRequest")
        except Exception as exc:  # Telegram slow now: public channels only until the next start
            self.log.warning("could not ask Telegram who the reading account is (%s: %s); this reader "
                             "takes public channels only", type(exc).__name__, exc)
            return None
        return getattr(me, "user_id", None)

    def _use_account(self, account_id: int | None) -> None:
        """Every part that reads channels uses this account's own access hashes, and this reader's
        leases cover the private channels it can read."""
        self.leases.account_id = account_id
        for part in (self.poller, self.watchlist, self.sweeper, self.engagement):
            if part is not None:
                part.account_id = account_id

    def _claiming(self, change: Callable[[str], Awaitable[str]]) -> Callable[[str], Awaitable[str]]:
        """A /watch or /unwatch hook followed by a claim, so a new channel is read at the next poll."""
        async def changed(name: str) -> str:
            line = await change(name)
            await self.leases.claim()
            return line
        return changed

    # -- wiring -----------------------------------------------------------------------------------

    async def _watch_configured_by_name(self) -> None:
        """No reading account to resolve names: CHANWATCH_CHANNELS are watched by username (a
        placeholder each, `storage.channels.add_watch_name`), for the web reader."""
        now = self.now()
        for name in self.settings.channels:
            await self.db.transaction(channels.add_watch_name, name, now)
        if self.settings.channels:
            self.log.info("channels: %d configured, read by web preview", len(self.settings.channels))

    async def _watch_by_name(self, name: str) -> str:
        """/watch without a reading account: watch the name for the web reader; the reply line."""
        return await watch_by_web(self.db, name, self.now())

    async def _unwatch_by_name(self, name: str) -> str:
        """/unwatch without a reading account: stop reading the name (its archive stays)."""
        return await unwatch(self.db, name)

    async def _start_live(self) -> None:
        """With CHANWATCH_JOIN, take the joined channels' pushed updates (bot/live.py): stored at once,
        the dispatcher woken for their alerts, and a poll at once after a reconnection."""
        if not self.settings.join or self.dispatcher is None or self.user is None:
            return
        self.alerts_now = Wakeup(self.dispatcher.dispatch_instant, "alerts", logger=self.log)
        self.live = Live(self.db, self.user, after_ingest=self.percolator, on_ingest=self.alerts_now,
                         on_reconnect=self.poll_now, reads=self._live_reads, now=self.now)
        await self.live.start()

    def _build_media(self) -> None:
        """The media downloader, unless CHANWATCH_MEDIA=none (then no media job at all)."""
        kinds = self.settings.media_kinds
        if (kinds is not None and not kinds) or self.user is None:
            return  # the web preview gives no original files to download
        policy = MediaPolicy.from_settings(kinds, self.settings.media_max_mb)
        self.downloader = Downloader(self.db, self.user, MediaStore(self.settings.media_dir), policy,
                                     now=self.now, sleep=self.sleep, flood=self.flood,
                                     channels=lambda: self.leases.held)
        self.downloader.account_id = self.leases.account_id
        self._media_body = media_job(self.downloader, stopping=lambda: self._stopping, logger=self.log)

    async def _seed_alert_chat(self) -> None:
        chat = self.settings.alert_chat
        if chat is None:
            if self.settings.keywords:
                self.log.warning("CHANWATCH_KEYWORDS is set but CHANWATCH_ALERT_CHAT is not: "
                                 "the keywords are not seeded as rules")
            return
        rules = await self.db.transaction(seed_alert_chat, chat, list(self.settings.keywords), self.now())
        self.log.info("alert chat %d: %d keyword rule(s) seeded", chat, len(rules))

    def _build_alerting(self) -> None:
        """The dispatcher (sends what the percolator queued in the ingest transaction) and the bot
        commands (with the /watch hooks and digest rescheduling); with no bot, the alert log."""
        if self.bot is None:
            self.alert_log = AlertLog(self.db, now=self.now, logger=self.log)
            return
        watch, unwatch = ((self.watchlist.watch, self.watchlist.unwatch) if self.watchlist is not None
                          else (self._watch_by_name, self._unwatch_by_name))
        self.dispatcher = Dispatcher(
            self.db, self.bot, default_schedule=self.settings.digest_schedule,
            default_timezone=self.settings.timezone, now=self.now, sleep=self.sleep,
            flood_max_wait=float(self.settings.flood_max_wait),
            photo_dir=self.settings.media_dir if self.settings.alert_media else None,
            active=self._dispatching,
        )
        self.commands = Commands(
            self.db, self.bot, self.settings, watch=self._claiming(watch), unwatch=self._claiming(unwatch),
            on_subscription_change=self._subscription_changed, now=self.now,
        )

    async def _subscription_changed(self, chat_id: int) -> None:
        """A chat changed mode or schedule: its digest job follows."""
        if self.dispatcher is None or self._stopping:
            return
        try:
            await self.dispatcher.reschedule_digests()
        except Exception:
            self.log.exception("could not reschedule digests after chat %d changed", chat_id)

    def _install_executor(self) -> None:
        """Put a GracefulExecutor in the scheduler (as its default when it has none yet)."""
        executor = GracefulExecutor()
        try:
            self.scheduler.add_executor(executor, "default")
            self._executor_alias = "default"
        except ValueError:  # the caller's scheduler already has a default executor: use ours by name
            self.log.debug("scheduler has a default executor; service jobs use %r", EXECUTOR)
            self.scheduler.add_executor(executor, EXECUTOR)
            self._executor_alias = EXECUTOR
        self.executor = executor

    def _interval_job(self, func: Callable[[], Awaitable[None]], job_id: str, seconds: float,
                      *, first: datetime | None) -> None:
        period = max(seconds / self.time_scale, 0.001)
        self.scheduler.add_job(
            func, IntervalTrigger(seconds=period, timezone=UTC), id=job_id, name=job_id,
            executor=self._executor_alias, max_instances=1, coalesce=True,
            misfire_grace_time=max(1, int(period)), replace_existing=True,
            **({"next_run_time": first} if first is not None else {}),
        )

    def _add_jobs(self) -> None:
        started = datetime.now(UTC)  # APScheduler runs on the wall clock, whatever `now` says
        self._interval_job(self.lease_cycle, LEASE_JOB, self.settings.lease_seconds / CLAIMS_PER_PERIOD,
                           first=None)
        if self.user is not None:
            self._interval_job(self.poll_cycle, "poll", float(self.settings.poll_interval), first=started)
            self._interval_job(self.recheck_cycle, "recheck", float(self.settings.recheck_interval),
                               first=None)
        if self.web is not None:
            self._interval_job(self.web_cycle, "web", float(self.settings.poll_interval), first=started)
            self._interval_job(self.web_recheck_cycle, "web recheck", float(self.settings.recheck_interval),
                               first=None)
        if self.sweeper is not None:
            self._interval_job(self.sweep_cycle, "sweep", SWEEP_EVERY, first=None)
        if self.downloader is not None:
            self._interval_job(self.media_cycle, MEDIA_JOB, MEDIA_EVERY, first=None)
        if self.engagement is not None:
            self._interval_job(self.engagement_cycle, "engagement", ENGAGEMENT_EVERY, first=None)
        if self.dispatcher is not None:
            self.dispatcher.schedule(self.scheduler, instant_every=INSTANT_EVERY / self.time_scale,
                                     executor=self._executor_alias)
        if self.alert_log is not None:
            self._interval_job(self.outbox_log_cycle, "outbox log", OUTBOX_LOG_EVERY, first=started)
