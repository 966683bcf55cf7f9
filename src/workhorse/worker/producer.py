"""The claim loop: takes as many jobs as there are free slots (more while jobs are short).

It wakes when work may have arrived (an enqueue in this process, the store's change feed),
when a slot frees up after a claim that filled every slot, and on a jittered poll timer.
With nothing due it sleeps until the poll timer or the next scheduled job, whichever
comes first (a delay the store measures on its own clock: the worker's clock never
enters into it), so delayed jobs start on time without busy polling. A burst of wake-ups
costs one claim: they all set the same flag.

A job whose previous attempt was lost with its worker (SIGKILL, OOM, a segfault) may be
what killed it, and every job beside it died too. A worker that claims such a job while
it runs nothing else runs it alone: the rest of that claim goes back to the queue, and
nothing more is claimed until it ends. After a crash, the restarted (or any idle)
worker thus runs the crash's jobs one at a time, so a poison pill takes nobody else
down with it again. A busy worker runs such a job like any other rather than stall
its free slots behind work that may last hours.

While attempts are short (they held their slots under ``AHEAD_RUN_TIME`` on average),
the loop also claims ahead: up to twice ``concurrency`` jobs more than there are free
slots, held here and started as slots free, with the next claim made once the held
jobs can all start. The round trip of that claim then overlaps the attempts running,
instead of leaving every slot idle while it lasts (short jobs end together, and a claim
takes a millisecond or two), and each claim carries two rounds of jobs. Longer
attempts hold only the jobs that should start while ``AHEAD_CLAIMS`` claims are made
(the slots expected to free up meanwhile): none once attempts outlast the claims by
far, so a worker never sits on work that another could start. A job held ahead waits
about two attempts. Its lease is not renewed meanwhile: if no slot frees within
``AHEAD_MAX_WAIT`` (a quarter of the lease if shorter), the held jobs go back to the
queue, as they do at shutdown, their attempt not counted; on a crash their leases
expire like those of the jobs that ran. Claims under limits (where a held job would
take room that other workers could use) and isolation never claim ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence

from workhorse.backends.base import Backend, ClaimedJob, ClaimLimits, Wanted
from workhorse.settings import WorkerSettings
from workhorse.worker.running import RunningJobs, moving_average
from workhorse.worker.store_health import RetryDelay, StoreHealth

logger = logging.getLogger("workhorse.worker")

CLAIM_MAX = 200
"""Most jobs taken by one claim (a worker with more slots claims several times)."""
POLL_JITTER = 0.1
RETRY_FIRST = 0.05
DUE_RETRY_FIRST = 0.01
"""The first wait after the store said a job is due but the claim found none."""
AHEAD_RUN_TIME = 0.01
"""Seconds an attempt holds its slot on average, under which jobs are claimed ahead."""
AHEAD_ROUNDS = 2
"""Jobs claimed ahead, in rounds of ``concurrency``: one claim per two rounds of short
jobs took a one-process drain of no-op jobs at 16 in flight from 6,600-8,800 jobs/s to
7,500-9,000 on PostgreSQL (6 alternating runs) and 7,400 to 8,300-8,500 on SQLite."""
AHEAD_CLAIMS = 2
"""Attempts longer than ``AHEAD_RUN_TIME`` hold the jobs that should start while this
many claims are made: with 50 ms jobs at 50 in flight, about 4 jobs where claims take
2 ms. 2,000 such jobs took 2.12-2.16 s on SQLite and 2.19-2.21 s on PostgreSQL without
(each freed slot idle for a claim's round trip), 2.08-2.11 s and 2.11-2.12 s with (four
alternating pairs; ideal 2.00 s)."""
AHEAD_MAX_WAIT = 1.0
"""Seconds a job claimed ahead may wait for a slot before it goes back to the queue."""
_LOOP = "producer"


class Producer:
    """Claims jobs for one worker and hands them to ``launch``."""

    def __init__(
        self,
        store: Backend,
        settings: WorkerSettings,
        worker_id: str,
        running: RunningJobs,
        health: StoreHealth,
        *,
        launch: Callable[[Sequence[ClaimedJob], float], None],
        release: Callable[[Sequence[ClaimedJob]], Awaitable[None]],
        may_claim: Callable[[], bool],
        limits: ClaimLimits | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._worker_id = worker_id
        self._running = running
        self._health = health
        self._launch = launch
        self._release = release
        self._may_claim = may_claim
        self._limits = limits
        """The app's limits; None (no limits) keeps the plain claim, which costs less."""
        self._queues = settings.queues
        self._wanted = None if settings.queues is None else frozenset(settings.queues)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        self.idle = Wanted()
        """Set while the loop sleeps until work may arrive: the wake-ups it waits for
        (the store's change feed may rest while it is clear)."""
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._stopping = False
        self._isolating = False
        """A job that may have killed its last worker runs alone: claim nothing more
        until this worker is empty."""
        self._stopped = asyncio.Event()
        self._due_retry = RetryDelay(DUE_RETRY_FIRST, settings.poll_interval)
        self._ahead: list[tuple[ClaimedJob, float]] = []
        """Jobs claimed ahead of the free slots, each with the time its claim began."""
        self._ahead_wait = min(AHEAD_MAX_WAIT, settings.lease / 4)
        self._claim_time = 0.0
        """Seconds a claim takes, a moving average."""
        self._stalled = False
        """Held jobs went back for want of a slot: claim none ahead until one frees."""
        self.claims = 0
        """Claim calls made (for tests and benchmarks)."""

    # -- wake-ups -----------------------------------------------------------------------

    def wake(self, queue: str | None = None) -> None:
        """Look for work soon. Thread-safe and cheap to call in bursts."""
        if queue is not None and self._wanted is not None and queue not in self._wanted:
            return
        if threading.get_ident() == self._loop_thread:  # on the loop already: no hop
            self._wakeup.set()
            return
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the worker is gone
            self._loop.call_soon_threadsafe(self._set_wakeup)

    def _set_wakeup(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        self._wakeup.set()

    def stop(self) -> None:
        """Never claim again; the loop returns after any claim in flight."""
        self._stopping = True
        self._stopped.set()
        self._wakeup.set()
        self._running.freed.set()

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Claim until stopped."""
        retry = RetryDelay(RETRY_FIRST, self._settings.poll_interval)
        while not self._stopping:
            if self._isolating:
                if self._running.jobs:
                    await self._wait_for_empty()
                    continue
                self._isolating = False
            if self._held_too_long():
                await self._give_back_stale()
            self._launch_ahead()
            if self._running.free:
                self._stalled = False
            ahead = self._lookahead()
            room = self._running.free + ahead - len(self._ahead)
            # Claiming ahead, the next claim waits until the held jobs can all start.
            if room < max(1, ahead) or not self._may_claim():
                await self._wait_for_slot()
                continue
            self._wakeup.clear()
            limit = min(room, CLAIM_MAX)
            started = time.monotonic()
            try:
                jobs = await self._claim(limit)
            except Exception as exc:
                self._health.failed(_LOOP, "claiming jobs", exc)
                await _wait(self._stopped, retry.next())  # wake-ups must not hurry a retry
                continue
            retry.reset()
            self._health.ok(_LOOP)
            self.claims += 1
            self._claim_time = moving_average(self._claim_time, time.monotonic() - started)
            if self._stopping:
                await self._release(jobs)
                break
            if jobs:
                self._due_retry.reset()
                self._start(await self._isolate(jobs), started)
            if len(jobs) < limit:
                if jobs:  # the attempts just launched start before the store is asked more
                    await asyncio.sleep(0)
                await self._start_held()
                await self._sleep(await self._idle_timeout())
        await self._give_back()

    def _lookahead(self) -> int:
        """How many jobs to hold claimed ahead of the free slots (see the module doc)."""
        if self._limits is not None or self._isolating or self._stalled:
            return 0
        capacity, run_time = self._running.capacity, self._running.run_time
        rounds = AHEAD_ROUNDS * capacity
        if run_time < AHEAD_RUN_TIME:
            return rounds
        # The slots expected to free up while AHEAD_CLAIMS claims are made (none while
        # no attempt has ended: run_time is infinite).
        return min(rounds, int(AHEAD_CLAIMS * capacity * self._claim_time / run_time))

    def _start(self, jobs: list[ClaimedJob], started: float) -> None:
        """Launch what the free slots take of ``jobs`` (claimed from ``started`` on) and
        hold the rest ahead."""
        free = self._running.free
        if free:
            self._launch(jobs[:free], started)
        self._ahead.extend((job, started) for job in jobs[free:])

    def _launch_ahead(self) -> None:
        """Launch held jobs into the slots that freed up, in claim order."""
        free = self._running.free
        if not self._ahead or not free:
            return
        taken, self._ahead = self._ahead[:free], self._ahead[free:]
        # The lease of each was renewed when its claim began: the earliest is the bound.
        self._launch([job for job, _ in taken], taken[0][1])

    async def _start_held(self) -> None:
        """The queue ran dry: launch the held jobs as slots free, before resting."""
        while self._ahead and not self._stopping:
            await self._wait_for_slot()
            if self._held_too_long():
                await self._give_back_stale()
            self._launch_ahead()

    def _held_too_long(self) -> bool:
        """Whether the oldest held job waited its time out: a held job never starts with
        less than three quarters of its lease left, however long a claim kept this loop
        from starting it."""
        return bool(self._ahead) and time.monotonic() - self._ahead[0][1] > self._ahead_wait

    async def _give_back_stale(self) -> None:
        """Give the held jobs back to the queue, and claim none ahead until a slot frees."""
        self._stalled = True
        await self._give_back()

    async def _give_back(self) -> None:
        held, self._ahead = self._ahead, []
        if held:
            await self._release([job for job, _ in held])

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        if self._limits is None:
            return await self._store.job_claim(
                worker_id=self._worker_id,
                queues=self._queues,
                limit=limit,
                lease_seconds=self._settings.lease,
            )
        return await self._store.job_claim_limited(
            worker_id=self._worker_id,
            queues=self._queues,
            limit=limit,
            lease_seconds=self._settings.lease,
            limits=self._limits,
        )

    async def _isolate(self, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
        """The claimed jobs to start now: all of them, unless this worker is empty and
        one was claimed after its previous attempt was lost. Then that one starts alone
        and the others go back to the queue, their attempt not counted."""
        if self._running.jobs or self._ahead:
            return jobs
        suspect = next((job for job in jobs if job.previous_attempt_lost), None)
        if suspect is None:
            return jobs
        self._isolating = True
        logger.info(
            "worker %s: the previous attempt of job %d died with its worker; running it alone",
            self._worker_id,
            suspect.id,
        )
        await self._release([job for job in jobs if job is not suspect])
        return [suspect]

    async def _wait_for_empty(self) -> None:
        self._running.freed.clear()
        if self._running.jobs:
            await _wait(self._running.freed, self._settings.poll_interval)

    async def _wait_for_slot(self) -> None:
        self._running.freed.clear()
        if self._running.free and (self._ahead or self._may_claim()):
            return
        # Bounded by the poll interval too: a side task coming back up sets no event.
        timeout = self._settings.poll_interval
        if self._ahead:  # and by when the held jobs go back
            timeout = min(timeout, self._ahead[0][1] + self._ahead_wait - time.monotonic())
        await _wait(self._running.freed, max(timeout, 0.0))

    async def _idle_timeout(self) -> float:
        """How long to sleep after a claim that left slots free: until the poll timer or
        the next scheduled job, whichever comes first. The store measures the delay on
        its own clock, so a skewed worker clock cannot make it wrong. A job that the
        store calls due while the claim found nothing (it holds no room under a limit,
        another worker took it) makes the waits grow from ``DUE_RETRY_FIRST``, rather
        than the worker claiming in a tight loop."""
        poll = self._settings.poll_interval
        timeout = poll * random.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
        try:
            due_in = await self._store.job_next_due_in(queues=self._queues)
        except Exception as exc:
            self._health.failed(_LOOP, "looking for scheduled jobs", exc)
            return timeout
        if due_in is None:
            self._due_retry.reset()
            return timeout
        if due_in > 0:
            self._due_retry.reset()
            return min(timeout, due_in)
        return min(timeout, self._due_retry.next())

    async def _sleep(self, timeout: float) -> None:
        """Sleep up to ``timeout``, ending early on a wake-up."""
        if self._stopping:
            return
        self.idle.set()
        try:
            await _wait(self._wakeup, timeout)
        finally:
            self.idle.clear()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    if event.is_set():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
