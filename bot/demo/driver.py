"""Run a scheduler's interval jobs on a simulated clock, through the scheduler itself.

The daemon's `AsyncIOScheduler` fires jobs on the wall clock. The demo's day runs on the World's
clock, which can go much faster (``--speed max``). `JobDriver` keeps the two in step: it notes when
(in simulated time) each job last started, and `run_due()` makes every interval job whose simulated
period has passed run now — by moving the job's `next_run_time` to the present, so APScheduler
itself submits it (max_instances, coalescing and the service's executor all apply) — and waits for
the run to finish. Jobs the scheduler fires on its own count too, so at a moderate speed the driver
only catches up when the wall-clock scheduler falls behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
)
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

_DONE, _RETRY = "done", "retry"


@dataclass(eq=False)
class _Waiter:
    job_id: str
    requested: datetime
    future: asyncio.Future
    busy: bool = False


class JobDriver:
    """Makes a scheduler's interval jobs run once per simulated period (see the module docstring).

    `time_scale` is what the service divided the periods by (a job's simulated period is its
    trigger's interval times `time_scale`); `min_period` (simulated seconds) keeps very frequent
    jobs (the instant-alert dispatcher) from running more often than the poll that feeds them.
    """

    def __init__(self, scheduler: BaseScheduler, now: Callable[[], datetime], *, time_scale: float = 1.0,
                 min_period: float = 0.0, timeout: float = 120.0) -> None:
        self.scheduler = scheduler
        self.now = now
        self.time_scale = time_scale
        self.min_period = min_period
        self.timeout = timeout
        #: job id -> simulated time its latest run was submitted.
        self.last_start: dict[str, datetime] = {}
        #: job id -> runs finished (natural and driven).
        self.runs: dict[str, int] = {}
        self._waiters: list[_Waiter] = []
        scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
                               | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    # -- which jobs, how often ----------------------------------------------------------------

    def period(self, job: Any) -> timedelta | None:
        """The simulated period of an interval job (None for other triggers)."""
        if not isinstance(job.trigger, IntervalTrigger):
            return None
        seconds = job.trigger.interval.total_seconds() * self.time_scale
        return timedelta(seconds=max(seconds, self.min_period))

    def _interval_jobs(self) -> list[tuple[Any, timedelta]]:
        jobs = []
        for job in self.scheduler.get_jobs():
            period = self.period(job)
            if period is not None:
                jobs.append((job, period))
        # slow jobs first (recheck, poll, then the alert sender), by their own period when clamped alike
        jobs.sort(key=lambda item: (-item[1], -item[0].trigger.interval))
        return jobs

    def next_due(self) -> datetime | None:
        """The simulated time the earliest interval job is next due (now, for one never run)."""
        times = [self.last_start[job.id] + period if job.id in self.last_start else self.now()
                 for job, period in self._interval_jobs()]
        return min(times, default=None)

    # -- running ------------------------------------------------------------------------------

    async def run_due(self) -> list[str]:
        """Run (one after the other) the interval jobs whose simulated period has passed; their ids."""
        ran = []
        for job, period in self._interval_jobs():
            last = self.last_start.get(job.id)
            if last is None or last + period <= self.now():
                await self.run_now(job.id)
                ran.append(job.id)
        return ran

    async def run_all(self) -> list[str]:
        """Run every interval job once now (slowest first), e.g. to finish the day."""
        ran = []
        for job, _ in self._interval_jobs():
            await self.run_now(job.id)
            ran.append(job.id)
        return ran

    async def run_now(self, job_id: str) -> bool:
        """Have the scheduler run `job_id` now and wait until that run finished; False if no such job.

        If the job is already running (max_instances), wait for that run to end and ask again, so
        the run waited for always starts after this call.
        """
        loop = asyncio.get_running_loop()
        while True:
            job = self.scheduler.get_job(job_id)
            if job is None:
                return False
            requested = datetime.now(UTC)
            waiter = _Waiter(job_id, requested, loop.create_future())
            self._waiters.append(waiter)
            job.modify(next_run_time=requested)
            try:
                outcome = await asyncio.wait_for(waiter.future, self.timeout)
            except TimeoutError:
                raise RuntimeError(f"job {job_id!r} did not finish within {self.timeout:g} s") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if outcome == _DONE:
                return True

    def _on_event(self, event: Any) -> None:
        """Scheduler listener (called on the event loop's thread by AsyncIOScheduler)."""
        code = event.code
        job_id = event.job_id
        if code == EVENT_JOB_SUBMITTED:
            self.last_start[job_id] = self.now()
            return
        if code in (EVENT_JOB_EXECUTED, EVENT_JOB_ERROR):
            self.runs[job_id] = self.runs.get(job_id, 0) + 1
            for waiter in self._waiting(job_id):
                if waiter.busy:
                    self._resolve(waiter, _RETRY)
                elif event.scheduled_run_time >= waiter.requested:
                    self._resolve(waiter, _DONE)
            return
        times = list(getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time])
        latest = max(times)
        for waiter in self._waiting(job_id):
            if latest < waiter.requested:
                continue
            if code == EVENT_JOB_MAX_INSTANCES:
                waiter.busy = True  # resolved (retry) when the running instance ends
            else:  # missed: ask again
                self._resolve(waiter, _RETRY)

    def _waiting(self, job_id: str) -> list[_Waiter]:
        return [w for w in self._waiters if w.job_id == job_id and not w.future.done()]

    @staticmethod
    def _resolve(waiter: _Waiter, outcome: str) -> None:
        if not waiter.future.done():
            waiter.future.set_result(outcome)

    def close(self) -> None:
        """Stop listening to the scheduler."""
        self.scheduler.remove_listener(self._on_event)
