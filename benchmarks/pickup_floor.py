"""The floor of a pickup on SQLite: workhorse's wake-up design with nothing around it.

    .venv/bin/python benchmarks/pickup_floor.py [--samples 200]

A worker process waits for the database's files to be written with inotify in its event
loop, reads ``PRAGMA data_version`` when they are, and claims with one ``UPDATE ...
RETURNING``; a task of its loop then notes how long after the enqueue it started. This
process inserts one row at a time, 50-150 ms apart (an idle worker, as in ``bench.py``'s
and the peers harness's pickup latency). No app, no producer, no executor: the figures
are what the store and the operating system cost, for comparison with the real worker's
pickup latency (``bench.py``).

Each run varies one thing: a bare table (an id, a state, the time sent) or workhorse's
own jobs table (its insert and its claim statement); the enqueue's ``fdatasync`` of the
WAL after its commit (the default store's durable enqueue) or none; the worker on any
CPU, or pinned to another CPU than this process's. Linux only (inotify, CPU affinity).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workhorse import Workhorse
from workhorse.backends.base import NewJob
from workhorse.backends.sqlite import job_writes
from workhorse.backends.sqlite.inotify import open_file_watch
from workhorse.backends.sqlite.rows import claimed_jobs, insert_params
from workhorse.backends.sqlite.statements import claim_sql, due_query
from workhorse.backends.sqlite.watch import FOLLOW_UP

SAMPLES = 200
WARMUP = 5
SAMPLE_TIMEOUT = 10.0
"""Seconds a job may wait to be picked up before the run is called failed."""

BARE_SCHEMA = (
    "CREATE TABLE floor_jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, sent REAL NOT NULL)",
    "CREATE INDEX floor_jobs_queued ON floor_jobs (id) WHERE state = 'queued'",
)
BARE_CLAIM = """
UPDATE floor_jobs SET state = 'running'
WHERE id IN (SELECT id FROM floor_jobs WHERE state = 'queued' ORDER BY id LIMIT 16)
RETURNING sent
"""


@dataclass(frozen=True)
class Run:
    table: str
    """``bare`` (an id, a state, the time sent) or ``jobs``."""
    fsync: bool
    pinned: bool = False

    def label(self) -> str:
        return " | ".join(
            (
                "workhorse's jobs table" if self.table == "jobs" else "bare (id, state, sent)",
                "fdatasync" if self.fsync else "none",
                "another CPU than the enqueuer's" if self.pinned else "any",
            )
        )


RUNS = (
    Run("bare", fsync=False),
    Run("bare", fsync=True),
    Run("bare", fsync=True, pinned=True),
    Run("jobs", fsync=False),
    Run("jobs", fsync=True),
    Run("jobs", fsync=True, pinned=True),
)


# -- the worker process ---------------------------------------------------------------


def _claim_bare(conn: sqlite3.Connection) -> list[float]:
    return [sent for (sent,) in conn.execute(BARE_CLAIM)]


def _claim_jobs(conn: sqlite3.Connection) -> list[float]:
    due, params = due_query(None, None)
    params.update(now=time.time(), worker_id="floor", lease_seconds=60.0, limit=16)
    rows = job_writes.claim(conn, claim_sql(due), params)
    return [float(json.loads(job.args)[0]) for job in claimed_jobs(rows)]


async def work(table: str, path: str) -> None:
    """Claim what is enqueued, as soon as the files say so; print each pickup latency."""
    loop = asyncio.get_running_loop()
    files = open_file_watch(Path(path))
    if files is None:
        raise SystemExit("inotify is not available here")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("PRAGMA busy_timeout = 0")
    writer = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    writer.execute("PRAGMA synchronous = NORMAL")
    claim = _claim_jobs if table == "jobs" else _claim_bare
    seen = _version(reader)
    follow_up: asyncio.TimerHandle | None = None
    running: set[asyncio.Task[None]] = set()

    async def started(sent: float) -> None:
        print(time.time() - sent, flush=True)

    def look(step: int) -> None:
        nonlocal seen, follow_up
        version = _version(reader)
        if version == seen:
            if step < len(FOLLOW_UP):
                follow_up = loop.call_later(FOLLOW_UP[step], look, step + 1)
            return
        seen = version
        writer.execute("BEGIN IMMEDIATE")
        sent = claim(writer)
        writer.execute("COMMIT")
        for moment in sent:
            task = loop.create_task(started(moment))
            running.add(task)
            task.add_done_callback(running.discard)

    def written() -> None:
        if follow_up is not None:
            follow_up.cancel()
        if files.drain():
            look(0)

    loop.add_reader(files.fileno(), written)
    print("ready", flush=True)
    await asyncio.Event().wait()


def _version(cursor: sqlite3.Connection) -> int:
    (version,) = cursor.execute("PRAGMA data_version").fetchone()
    return int(version)


# -- this process: the enqueuer -------------------------------------------------------


def _create_store(table: str, path: str) -> Callable[[], None]:
    """Create the table; return the insert of one job stamped with the time."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if table == "jobs":
        asyncio.run(_migrate(path))

        def insert() -> None:
            job = NewJob(task="stamp", args=f"[{time.time()!r}]")
            job_writes.insert(conn, [insert_params(job, time.time())])

    else:
        for statement in BARE_SCHEMA:
            conn.execute(statement)

        def insert() -> None:
            conn.execute(
                "INSERT INTO floor_jobs (state, sent) VALUES ('queued', ?)", (time.time(),)
            )

    # A read opens the WAL file (the migration's connections, closing, removed it).
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def enqueue() -> None:
        conn.execute("BEGIN IMMEDIATE")
        insert()
        conn.execute("COMMIT")

    return enqueue


async def _migrate(path: str) -> None:
    app = Workhorse(f"sqlite:///{path}")
    await app.backend()
    await app.aclose()


def measure(run: Run, samples: int) -> list[float]:
    """Pickup latencies in ms of ``samples`` jobs enqueued one at a time."""
    folder = tempfile.mkdtemp(prefix="pickup-floor-")
    path = os.path.join(folder, "floor.db")
    enqueue = _create_store(run.table, path)
    wal = os.open(path + "-wal", os.O_RDWR)
    everywhere = os.sched_getaffinity(0)
    worker_cpus = everywhere
    if run.pinned:
        first, *others = sorted(everywhere)
        if not others:
            raise SystemExit("pinning needs two CPUs")
        os.sched_setaffinity(0, {first})
        worker_cpus = set(others)
    worker = subprocess.Popen(
        [sys.executable, __file__, "--worker", run.table, path], stdout=subprocess.PIPE
    )
    assert worker.stdout is not None
    lines = _Lines(worker.stdout.fileno())
    try:
        os.sched_setaffinity(worker.pid, worker_cpus)
        if lines.next() != "ready":
            raise SystemExit("the worker did not start")
        latencies = []
        for _ in range(WARMUP + samples):
            time.sleep(random.uniform(0.05, 0.15))
            enqueue()
            if run.fsync:
                os.fdatasync(wal)
            latencies.append(float(lines.next()) * 1000)
        return latencies[WARMUP:]
    finally:
        worker.terminate()
        worker.wait(SAMPLE_TIMEOUT)
        os.close(wal)
        os.sched_setaffinity(0, everywhere)


class _Lines:
    """The worker's output, line by line, each within :data:`SAMPLE_TIMEOUT`."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = b""

    def next(self) -> str:
        deadline = time.monotonic() + SAMPLE_TIMEOUT
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise SystemExit(f"nothing from the worker in {SAMPLE_TIMEOUT:g} s")
            chunk = os.read(self._fd, 4096)
            if not chunk:
                raise SystemExit("the worker exited")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--worker", nargs=2, metavar=("TABLE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(work(*args.worker))
        return
    print(f"{args.samples} samples per row, load {os.getloadavg()[0]:.2f}\n")
    print("| table | after the commit | worker on | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for run in RUNS:
        percentiles = statistics.quantiles(measure(run, args.samples), n=100)
        p50, p90, p99 = percentiles[49], percentiles[89], percentiles[98]
        print(f"| {run.label()} | {p50:.2f} | {p90:.2f} | {p99:.2f} |", flush=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
