"""The worker: its lifecycle (start, stop, run until a signal), and the wiring of its
services (producer, attempts, completer, heartbeat, progress, maintenance)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from workhorse.backends import redact_url
from workhorse.backends.base import (
    Backend,
    ClaimedJob,
    Lease,
    Outcome,
    ReclaimResult,
    WorkerInfo,
)
from workhorse.errors import WorkhorseError
from workhorse.scheduling.ticker import schedule_chores
from workhorse.settings import WorkerSettings
from workhorse.stats.pruning import PruneStats
from workhorse.webhooks.history import webhook_chores
from workhorse.worker._processes import ProcessPool
from workhorse.worker._threads import DaemonThreadPool
from workhorse.worker.attempts import Attempts, WorkerStats
from workhorse.worker.completer import Completer
from workhorse.worker.executor import JobRunner
from workhorse.worker.heartbeat import Heartbeat
from workhorse.worker.maintenance import (
    Chore,
    Maintenance,
    PromoteScheduled,
    Prune,
    ReclaimExpired,
)
from workhorse.worker.meter import AttemptMeter
from workhorse.worker.producer import Producer
from workhorse.worker.progress import ProgressReporter
from workhorse.worker.running import RunningJobs
from workhorse.worker.store_health import StoreHealth
from workhorse.worker.supervisor import Supervisor

if TYPE_CHECKING:
    from workhorse.app import Workhorse

logger = logging.getLogger("workhorse.worker")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerState(enum.StrEnum):
    """Where a worker is in its life."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


def new_worker_id() -> str:
    """``<hostname>-<pid>-<random>``: unique per start, readable in ``worker status``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(eq=False)
class _Session:
    """Everything one start of the worker owns."""

    loop: asyncio.AbstractEventLoop
    store: Backend
    supervisor: Supervisor
    runner: JobRunner
    running: RunningJobs
    completer: Completer
    attempts: Attempts
    producer: Producer
    heartbeat: Heartbeat
    maintenance: Maintenance
    progress: ProgressReporter
    meter: AttemptMeter
    health: StoreHealth
    stopped: asyncio.Event
    skip_grace: asyncio.Event
    remove_waker: Callable[[], None] = lambda: None
    shutdown: asyncio.Task[None] | None = None


class Worker:
    """Runs jobs of an app: ``async with app.worker(concurrency=8): ...``.

    Creating a worker does nothing: no task, no I/O. :meth:`start` registers it, starts
    its services and returns at once; :meth:`stop` drains it gracefully. :meth:`run` is
    the whole life of a worker process: start, wait for SIGTERM/SIGINT (or a stop
    requested through the store), stop.
    """

    def __init__(self, app: Workhorse, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self.id = new_worker_id()
        self.state = WorkerState.NEW
        self.stats = WorkerStats()
        self._session: _Session | None = None
        self._starting: asyncio.Future[None] | None = None
        self._stop_wanted = False

    @property
    def health(self) -> StoreHealth | None:
        """The store as this worker sees it: whether it is in an outage, and how many
        calls failed in the last one (None before the first start)."""
        return None if self._session is None else self._session.health

    def __repr__(self) -> str:
        return f"<Worker {self.id} {self.state} running={self.stats.running}>"

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Register the worker and start its services; returns as soon as it runs."""
        if self.state in (WorkerState.STARTING, WorkerState.RUNNING):
            await self._started()
            return
        if self.state is WorkerState.STOPPING:
            raise WorkhorseError(f"worker {self.id} is stopping; wait_stopped() first")
        if self.state is WorkerState.STOPPED:
            self.id = new_worker_id()
            self.stats = WorkerStats()
        self.state = WorkerState.STARTING
        self._starting = asyncio.get_running_loop().create_future()
        try:
            store = await self.app.backend()
            await store.worker_register(
                worker=WorkerInfo(
                    id=self.id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    queues=self.settings.queues,
                    concurrency=self.settings.concurrency,
                )
            )
            self._session = self._assemble(store)
        except BaseException:
            self.state = WorkerState.STOPPED
            self._starting.set_result(None)  # waiters go on; the caller gets the error
            self._starting = None
            raise
        self._launch_services(self._session)
        self.state = WorkerState.RUNNING
        self._starting.set_result(None)
        self._starting = None
        logger.info(
            "worker %s started: concurrency %d, queues %s, store %s",
            self.id,
            self.settings.concurrency,
            ",".join(self.settings.queues) if self.settings.queues else "all",
            redact_url(store.url),
        )
        if self._stop_wanted:
            self._begin_stop(None)

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop claiming at once, let running jobs finish within ``grace`` seconds
        (``settings.shutdown_grace`` by default), release what is left to the queue,
        write pending outcomes and deregister. Idempotent; concurrent calls share one
        shutdown (the first caller's ``grace`` wins)."""
        await self._started()
        task = self._begin_stop(grace)
        if task is not None:
            await asyncio.shield(task)

    def request_stop(self) -> None:
        """Begin a graceful stop; thread-safe, does not wait."""
        self._stop_wanted = True
        session = self._session
        if session is None or session.shutdown is not None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs anymore
            session.loop.call_soon_threadsafe(self._begin_stop, None)

    async def wait_stopped(self) -> None:
        """Wait until the worker has stopped (returns at once if it is not running)."""
        await self._started()
        session = self._session
        if session is not None:
            await session.stopped.wait()

    async def _started(self) -> None:
        # A start in progress settles first (its failure is the starter's to report).
        if self._starting is not None:
            await asyncio.shield(self._starting)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Start, run until a stop is requested (SIGTERM/SIGINT with ``handle_signals``,
        :meth:`request_stop`, or ``workhorse worker stop``), then stop gracefully. A
        second signal during the drain skips the rest of the grace."""
        await self.start()
        session = self._session
        assert session is not None
        restore = self._handle_signals(session) if handle_signals else None
        try:
            await self.wait_stopped()
        except asyncio.CancelledError:
            session.skip_grace.set()
            await self.stop()
            raise
        finally:
            if restore is not None:
                restore()

    # -- assembly -----------------------------------------------------------------------

    def _assemble(self, store: Backend) -> _Session:
        settings = self.settings
        running = RunningJobs(settings.concurrency)
        runner = JobRunner(
            self.app,
            threads=DaemonThreadPool(settings.threads or settings.concurrency + 4),
            processes=lambda: ProcessPool(settings.processes),
        )
        loop = asyncio.get_running_loop()
        health = StoreHealth(self.id, store)
        completer = Completer(store, health, on_applied=self._outcomes_written)
        progress = ProgressReporter(store, loop, running, health)
        attempts = Attempts(settings, runner, running, completer, progress, self.stats)
        meter = AttemptMeter(
            self.app._tally, self.app._flusher.soon, running=running, pending=completer.leases
        )
        supervisor = Supervisor(self.id)

        def launch(jobs: Sequence[ClaimedJob], renewed_at: float) -> None:
            meter.started(jobs)
            attempts.launch(jobs, renewed_at)

        producer = Producer(
            store,
            settings,
            self.id,
            running,
            health,
            launch=launch,
            release=lambda jobs: self._release(store, [_lease(job) for job in jobs]),
            may_claim=lambda: supervisor.is_up("heartbeat") and supervisor.is_up("leases"),
            limits=self.app.limits.claim_limits(),
        )
        heartbeat = Heartbeat(
            store,
            settings,
            self.id,
            running,
            health,
            pending_leases=completer.leases,
            on_lost=attempts.lost,
            on_cancel=attempts.cancel_requested,
            on_stop_requested=self._stop_requested_by_store,
        )

        def reclaimed(result: ReclaimResult) -> None:
            meter.reclaimed(result.jobs)
            if ended := result.failed + result.cancelled:
                self.app._jobs_finished(ended)
            if result.requeued:
                producer.wake()

        chores: tuple[Chore, ...] = (
            ReclaimExpired(
                interval=settings.reclaim_interval,
                result_ttl=self.app.result_ttl,
                on_reclaimed=reclaimed,
            ),
            PromoteScheduled(interval=settings.reclaim_interval),
            Prune(interval=settings.prune_interval, worker_silence=max(60.0, 10 * settings.lease)),
            *schedule_chores(
                list(self.app.schedules), settings.reclaim_interval, self.app._count_enqueued
            ),
            *webhook_chores(settings.prune_interval, self.app.result_ttl),
            PruneStats(interval=settings.prune_interval),
        )
        maintenance = Maintenance(
            store=store,
            health=health,
            worker_id=self.id,
            elect_every=settings.reclaim_interval,
            leader_ttl=settings.leader_ttl,
            chores=chores,
        )
        return _Session(
            loop=loop,
            store=store,
            supervisor=supervisor,
            runner=runner,
            running=running,
            completer=completer,
            attempts=attempts,
            producer=producer,
            heartbeat=heartbeat,
            maintenance=maintenance,
            progress=progress,
            meter=meter,
            health=health,
            stopped=asyncio.Event(),
            skip_grace=asyncio.Event(),
        )

    def _launch_services(self, s: _Session) -> None:
        # The heartbeat first: no job may run before its lease is being renewed.
        s.supervisor.start("heartbeat", s.heartbeat.run)
        s.supervisor.start("leases", s.heartbeat.watch_leases)
        s.supervisor.start("completer", s.completer.run)
        s.supervisor.start("progress", s.progress.run)
        s.supervisor.start("maintenance", s.maintenance.run)
        if s.store.capabilities.change_feed:
            s.supervisor.start("watch", lambda: _watch(s.store, s.producer))
        s.supervisor.start("producer", s.producer.run)
        s.remove_waker = self.app._add_waker(s.producer.wake)

    # -- callbacks from the services ----------------------------------------------------

    def _outcomes_written(self, outcomes: Sequence[Outcome]) -> None:
        finished: list[int] = []
        retrying = False
        for outcome in outcomes:
            self.stats.count(outcome)
            if outcome.state.is_final:
                finished.append(outcome.job_id)
            else:
                retrying = True
        if finished:
            self.app._jobs_finished(finished)
        session = self._session
        if session is None:
            return
        session.meter.ended(outcomes)
        if retrying:
            session.producer.wake()  # to sleep until the retry is due
        elif finished and (self.app.limits or not session.store.capabilities.change_feed):
            # Jobs waiting on these may be queued now; a store with a change feed says so
            # itself, others (memory://) only through this. Under limits, a job held back
            # by one may fit now (no store reports that).
            session.producer.wake()

    def _stop_requested_by_store(self) -> None:
        if self.state is WorkerState.RUNNING:
            logger.info("worker %s: a stop was requested through the store", self.id)
            self._begin_stop(None)

    # -- stopping -----------------------------------------------------------------------

    def _begin_stop(self, grace: float | None) -> asyncio.Task[None] | None:
        session = self._session
        if session is None or self.state not in (WorkerState.RUNNING, WorkerState.STOPPING):
            return None
        if session.shutdown is None:
            session.shutdown = session.loop.create_task(self._shutdown(session, grace))
        return session.shutdown

    async def _shutdown(self, s: _Session, grace: float | None) -> None:
        self.state = WorkerState.STOPPING
        grace = self.settings.shutdown_grace if grace is None else grace
        logger.info("worker %s stopping (grace %ss)", self.id, grace)
        try:
            s.remove_waker()
            s.producer.stop()
            if not await s.supervisor.join("producer", timeout=self.settings.lease):
                await s.supervisor.stop("producer")
            await s.supervisor.stop("watch")
            unfinished = await s.attempts.drain(grace, s.skip_grace)
            await self._release(s.store, unfinished)
            unwritten = await s.completer.close(timeout=self.settings.lease)
            if unwritten:
                logger.error(
                    "worker %s: %d outcome(s) could not be stored (jobs %s); those jobs "
                    "will run again once their lease expires",
                    self.id,
                    len(unwritten),
                    ", ".join(str(p.outcome.job_id) for p in unwritten[:20]),
                )
            await self.app._flusher.flush(s.store)
            await s.supervisor.stop_all()
            await s.maintenance.resign()
            try:
                await s.store.worker_deregister(worker_id=self.id)
            except Exception as exc:
                logger.warning("worker %s: could not deregister: %s", self.id, exc)
        finally:
            await s.supervisor.stop_all()
            s.runner.close()
            self.state = WorkerState.STOPPED
            self._stop_wanted = False
            s.stopped.set()
            logger.info(
                "worker %s stopped: %d completed, %d failed, %d retried, %d cancelled, %d released",
                self.id,
                self.stats.completed,
                self.stats.failed,
                self.stats.retried,
                self.stats.cancelled,
                self.stats.released,
            )

    async def _release(self, store: Backend, leases: list[Lease]) -> None:
        if not leases:
            return
        try:
            released = await store.job_release(leases)
        except Exception as exc:
            logger.error(
                "worker %s: could not release %d job(s) (they run again once their lease "
                "expires): %s",
                self.id,
                len(leases),
                exc,
            )
            return
        self.stats.released += released
        logger.info("worker %s released %d job(s) back to the queue", self.id, released)

    def _handle_signals(self, s: _Session) -> Callable[[], None] | None:
        def on_signal(signum: signal.Signals) -> None:
            if self.state is WorkerState.RUNNING:
                logger.info(
                    "worker %s: %s received, stopping gracefully (send it again to skip the grace)",
                    self.id,
                    signum.name,
                )
                self._begin_stop(None)
            else:
                logger.warning(
                    "worker %s: %s received again, stopping running jobs now",
                    self.id,
                    signum.name,
                )
                s.skip_grace.set()

        installed: list[signal.Signals] = []
        for signum in _SIGNALS:
            try:
                s.loop.add_signal_handler(signum, on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no signal support (Windows)
            installed.append(signum)

        def restore() -> None:
            for signum in installed:
                s.loop.remove_signal_handler(signum)

        return restore


def _lease(job: ClaimedJob) -> Lease:
    return Lease(job_id=job.id, token=job.lease_token)


async def _watch(store: Backend, producer: Producer) -> None:
    await store.watch(producer.wake, wanted=producer.idle)
    raise RuntimeError("the store's change feed ended")
