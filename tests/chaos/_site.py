"""The chaos harness: a store, the ledger, a fleet of ``workhorse worker start``
processes that the test kills, stops and restarts, and a monitor that watches leases
while it does.

Timing: workers run with a 2 s lease renewed every 0.5 s, maintenance every 0.5 s and a
2 s leader lease (``WORKER_FLAGS``); ``overdue.py`` says how long past its lease expiry a
job may still show ``running``. Each fault a test causes is recorded with whether its
victim was the maintenance leader, which decides the bound for the leases it touches.

Every wait of a test draws on one budget (``BUDGET`` seconds from the site's creation),
so a stuck test fails with its own message before pytest-timeout (``TIMEOUT``) stops it;
the report of a failing chaos test carries the seed and every worker's log (see
``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cli._support import WorkerProcess, cli_env, eventually
from conftest import PG_URL
from workhorse.backends import Backend
from workhorse.backends.base import JobFilter, Lease, NewJob
from workhorse.jobs import FINAL_STATES, JobRecord, JobState

from .ledger import LEDGER_ENV, Ledger
from .overdue import HANDOVER_BOUND, LEADER_TTL, LEASE, OVERDUE_BOUND, SWEEP, Fault, Overdue

CHAOS_APP = "tests.chaos.apps:app"
WORKER_FLAGS = (
    "--lease",
    str(LEASE),
    "--heartbeat-interval",
    "0.5",
    "--reclaim-interval",
    str(SWEEP),
    "--leader-ttl",
    str(LEADER_TTL),
    "--poll-interval",
    "0.2",
    "--shutdown-grace",
    "5",
)
LOCKED = re.compile(r"\blocked\b", re.IGNORECASE)
"""SQLite's "database is locked" and workhorse's "store ... is locked" (not "blocked")."""
SERVING = " serving "
"""What ``workhorse worker start`` prints once its signal handlers are in place."""
MONITOR_EVERY = 0.1
BUDGET = 240.0
"""Seconds from a site's creation to the test's last check, every wait included."""
STOP_TIMEOUT = 30.0
"""Seconds the surviving workers have, all together, to drain and exit on SIGTERM."""
TIMEOUT = BUDGET + STOP_TIMEOUT + 60.0
"""pytest-timeout for a chaos test: its budget, the final drain, and a minute for the
fixtures (a PostgreSQL schema, killing what is left)."""


@dataclass
class Fleet:
    """Worker processes in numbered slots; a slot's worker can be killed and replaced."""

    tmp: Path
    env: dict[str, str]
    flags: tuple[str, ...]
    concurrency: int = 4
    slots: list[WorkerProcess] = field(default_factory=list)
    retired: list[WorkerProcess] = field(default_factory=list)
    """Workers that died (or were killed) and were replaced."""

    def _spawn(self, slot: int) -> WorkerProcess:
        number = len(self.slots) + len(self.retired)
        log = self.tmp / f"worker-{slot}-{number}.log"
        flags = (*self.flags, "--concurrency", str(self.concurrency))
        return WorkerProcess(CHAOS_APP, *flags, cwd=self.tmp, env=self.env, log=log)

    def start(self, count: int, *, concurrency: int) -> None:
        """Start ``count`` more workers, each in its own slot, running ``concurrency``
        jobs at a time (their replacements too)."""
        self.concurrency = concurrency
        for _ in range(count):
            self.slots.append(self._spawn(len(self.slots)))

    def replace(self, slot: int) -> WorkerProcess:
        """Start a new worker in ``slot`` (its old one must have exited)."""
        old = self.slots[slot]
        assert old.proc.poll() is not None, "replace() needs a dead worker"
        self.retired.append(old)
        self.slots[slot] = self._spawn(slot)
        return self.slots[slot]

    def replace_dead(self) -> list[int]:
        """Restart every worker that exited (what systemd or Kubernetes would do); the
        exit codes of the dead ones."""
        codes = []
        for slot, worker in enumerate(self.slots):
            code = worker.proc.poll()
            if code is not None:
                codes.append(code)
                self.replace(slot)
        return codes

    def everyone(self) -> list[WorkerProcess]:
        """Every worker ever started."""
        return [*self.retired, *self.slots]

    def logs(self, tail: int = 3000) -> str:
        """Every worker's output (the end of it), for failure messages."""
        return "\n".join(f"--- {w.log.name}\n{w.output()[-tail:]}" for w in self.everyone())

    def output(self) -> str:
        """Everything every worker printed."""
        return "\n".join(w.output() for w in self.everyone())

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> list[int]:
        """SIGTERM the live workers (each once it is up) and wait, ``timeout`` seconds
        for all of them: their exit codes (0 is a clean drain)."""
        deadline = time.monotonic() + timeout
        alive = [w for w in self.slots if w.proc.poll() is None]
        for worker in alive:
            # A replacement still starting has no SIGTERM handler yet: the signal would
            # kill it (-15) instead of asking it to drain.
            while SERVING not in worker.output() and worker.proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            worker.signal(signal.SIGTERM)
        return [worker.wait(max(0.1, deadline - time.monotonic())) for worker in alive]

    def kill_all(self) -> None:
        """Cleanup: nothing survives the test (SIGKILL ends stopped processes too)."""
        for worker in self.everyone():
            worker.kill()


@dataclass
class Monitor:
    """Polls the store while the faults happen: progress, and how long each attempt
    stayed ``running`` past its lease expiry (the longest sighting per attempt)."""

    store: Backend
    overdue: dict[tuple[int, datetime], Overdue] = field(default_factory=dict)
    """The worst sighting per job and lease expiry."""
    polls: int = 0

    async def running(self) -> list[JobRecord]:
        """The running jobs now; updates the overdue record."""
        jobs = await self.store.job_list(
            filter=JobFilter(states=(JobState.RUNNING,)), limit=100_000
        )
        now = datetime.now(UTC)
        for job in jobs:
            if job.lease_expires_at is None or job.lease_expires_at >= now:
                continue
            seconds = (now - job.lease_expires_at).total_seconds()
            key = (job.id, job.lease_expires_at)
            if key not in self.overdue or self.overdue[key].seconds < seconds:
                self.overdue[key] = Overdue(job, seconds)
        self.polls += 1
        return jobs

    async def held_by(self, worker_id: str | None) -> list[JobRecord]:
        """Running jobs whose lease ``worker_id`` holds."""
        return [job for job in await self.running() if job.worker_id == worker_id]

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Monitor]:
        """Poll in the background for the duration of the block."""

        async def loop() -> None:
            while True:
                await self.running()
                await asyncio.sleep(MONITOR_EVERY)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.running()  # a last look, and a task error surfaces here


@dataclass
class ChaosSite:
    """One store under test, its ledger, fleet and monitor, and the seeded randomness."""

    kind: str
    url: str
    tmp: Path
    store: Backend
    rng: random.Random
    seed: int
    worker_url: str = ""
    """The store URL workers and servers use (default ``url``)."""
    fleet: Fleet = field(init=False)
    monitor: Monitor = field(init=False)
    faults: list[Fault] = field(default_factory=list)
    """Every fault the test caused, in order."""
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.worker_url = self.worker_url or self.url
        self.fleet = Fleet(self.tmp, self.env, WORKER_FLAGS)
        self.monitor = Monitor(self.store)

    @property
    def ledger(self) -> Ledger:
        """The effects ledger of this test."""
        return Ledger(self.tmp / "ledger.txt")

    @property
    def env(self) -> dict[str, str]:
        """The environment of worker and server processes on this site."""
        return cli_env(self.worker_url, **{LEDGER_ENV: str(self.ledger.path)})

    @property
    def in_flight(self) -> list[int]:
        """Jobs in flight at each fault: the bound on duplicated effects."""
        return [fault.held for fault in self.faults]

    def context(self) -> str:
        """What a failure message needs: the seed to replay (the report of a failing
        chaos test adds every worker's log)."""
        return f"seed {self.seed} ({self.kind})"

    def time_left(self) -> float:
        """Seconds left of the test's ``BUDGET`` (at least one, for a last look)."""
        return max(1.0, self.started + BUDGET - time.monotonic())

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll ``check`` until it is true, failing with ``what`` and the seed once the
        test's budget is spent."""
        await eventually(check, timeout=self.time_left(), what=f"{what}; {self.context()}")

    async def insert(self, jobs: Sequence[NewJob], batch: int = 2_000) -> list[int]:
        """Enqueue straight into the store; the ids in order."""
        ids: list[int] = []
        for start in range(0, len(jobs), batch):
            rows = await self.store.job_insert_many(jobs[start : start + batch])
            ids.extend(row.id for row in rows)
        return ids

    async def count(self, *states: JobState) -> int:
        """Jobs in any of ``states``."""
        return await self.store.job_count(filter=JobFilter(states=states))

    async def records(self, ids: Sequence[int]) -> dict[int, JobRecord]:
        """The stored records of ``ids`` (missing ones are absent)."""
        wanted = set(ids)
        every = await self.store.job_list(filter=JobFilter(), limit=len(wanted) + 100_000)
        return {r.id: r for r in every if r.id in wanted}

    async def _read_tables(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of ``query`` read from workhorse's tables themselves, past the backend
        interface (``{schema}`` before a table name, ``?`` for parameters)."""
        if self.kind == "sqlite":
            path = self.url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
                return conn.execute(query.format(schema=""), params).fetchall()
        import psycopg

        schema = parse_qs(urlsplit(self.url).query)["schema"][0]
        sql = query.format(schema=f'"{schema}".').replace("?", "%s")
        async with await psycopg.AsyncConnection.connect(PG_URL) as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def leases_of(self, worker_id: str | None) -> list[Lease]:
        """The leases ``worker_id`` holds, read from the jobs table itself (the backend
        interface never shows tokens): what that worker would write with."""
        rows = await self._read_tables(
            "SELECT id, lease_token FROM {schema}workhorse_jobs "
            "WHERE state = 'running' AND worker_id = ?",
            worker_id,
        )
        return [Lease(job_id=int(job_id), token=str(token)) for job_id, token in rows]

    async def leader(self) -> str | None:
        """The worker the store names as maintenance leader. A dead or frozen leader
        stays named until another worker takes over, ``LEADER_TTL`` after its last
        renewal at the earliest."""
        rows = await self._read_tables("SELECT worker_id FROM {schema}workhorse_leader")
        return str(rows[0][0]) if rows else None

    async def strike(self, worker: WorkerProcess, signum: int) -> Fault:
        """Send ``signum`` to ``worker`` (for SIGKILL, wait for the death) and record the
        fault, with whether its victim led: the store named it leader right before the
        signal, or still names it after. The caller fills in what it held."""
        worker_id = await self.worker_id(worker)
        led = await self.leader() == worker_id
        at = datetime.now(UTC)
        worker.signal(signum)
        if signum == signal.SIGKILL:
            assert worker.wait(timeout=10) == -signal.SIGKILL
        return await self._record(Fault(at, worker_id, led))

    async def death(self, worker: WorkerProcess) -> Fault:
        """Record the fault of ``worker``, found dead by its own hand just now, with
        whether the store still names it leader. The caller fills in what it held."""
        return await self._record(Fault(datetime.now(UTC), await self.worker_id(worker)))

    async def _record(self, fault: Fault) -> Fault:
        if fault.worker_id is not None and await self.leader() == fault.worker_id:
            fault.led = True
        self.faults.append(fault)
        return fault

    async def worker_id(self, worker: WorkerProcess) -> str | None:
        """The id ``worker`` registered under, if it did."""
        return {w.pid: w.id for w in await self.store.worker_list()}.get(worker.pid)

    async def wait_final(self, total: int) -> None:
        """Until ``total`` jobs are final, restarting workers that die meanwhile."""

        async def done() -> bool:
            self.fleet.replace_dead()
            return await self.count(*FINAL_STATES) >= total

        await self.until(done, f"{total} final jobs")

    async def assert_bounds(self, ids: Sequence[int], *, completed: Sequence[int] = ()) -> None:
        """The bounds every chaos test states:

        - every job is final (none lost, none stuck);
        - every job in ``completed`` (default: all) ended completed with >= 1 effect;
        - duplicated effects <= the jobs in flight at the faults;
        - no job stayed ``running`` past its lease expiry longer than one sweep
          (``OVERDUE_BOUND``), or a leader handover (``HANDOVER_BOUND``) where a fault
          took the leader down while that lease ran out.
        """
        records = await self.records(ids)
        missing = set(ids) - set(records)
        assert not missing, f"jobs lost: {sorted(missing)[:20]}; {self.context()}"
        live = [r for r in records.values() if not r.state.is_final]
        assert not live, f"jobs not final: {live[:5]}; {self.context()}"
        expected = completed or ids
        not_completed = [records[i] for i in expected if records[i].state is not JobState.COMPLETED]
        assert not not_completed, f"{not_completed[:5]}; {self.context()}"
        counts = self.ledger.counts()
        without = [i for i in expected if counts[i] < 1]
        assert not without, f"completed without an effect: {without[:20]}; {self.context()}"
        duplicates = sum(counts[i] - 1 for i in ids if counts[i] > 1)
        assert duplicates <= sum(self.in_flight), (
            f"{duplicates} duplicated effects, but only {sum(self.in_flight)} jobs were in "
            f"flight at the faults ({self.in_flight}); {self.context()}"
        )
        late = [
            (seen.seconds, seen.bound(self.faults), seen.job)
            for seen in self.monitor.overdue.values()
            if seen.seconds > seen.bound(self.faults)
        ]
        assert not late, (
            f"running past the lease expiry longer than the bound: {late[:5]}; faults "
            f"{self.faults}; {self.context()}"
        )

    def report(self, what: str) -> None:
        """Print what the test measured (shown with ``-s``, and on failure)."""
        led = sum(fault.led for fault in self.faults)
        longest = {OVERDUE_BOUND: 0.0, HANDOVER_BOUND: 0.0}
        for seen in self.monitor.overdue.values():
            bound = seen.bound(self.faults)
            longest[bound] = max(longest[bound], seen.seconds)
        print(
            f"chaos [{self.kind}] {what}: seed {self.seed}, in flight at the faults "
            f"{sum(self.in_flight)} ({len(self.faults)} faults, {led} of the leader), "
            f"duplicated effects {self.ledger.duplicates()}, longest overdue lease "
            f"{longest[OVERDUE_BOUND]:.2f}s (bound {OVERDUE_BOUND}s), "
            f"{longest[HANDOVER_BOUND]:.2f}s where the leader went down "
            f"(bound {HANDOVER_BOUND}s), {time.monotonic() - self.started:.1f}s"
        )
