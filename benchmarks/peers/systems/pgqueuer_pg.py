"""PgQueuer on PostgreSQL (asyncpg driver, LISTEN/NOTIFY).

The worker process is this module run as a script calling ``pgqueuer.run`` (what
``pgq run`` does): ``pgq run`` 1.6.0 fails at start with the installed typer
(``AttributeError: 'str' object has no attribute 'name'`` in its log-level option).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from harness import config, tasks
from harness.interface import System
from pgqueuer import PgQueuer, Queries, run
from pgqueuer.models import Job

BULK_BATCH = 1_000


def register(pgq: PgQueuer) -> None:
    """The benchmark entrypoints (a job's payload carries ``stamp``'s send time)."""

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        await tasks.anoop()

    @pgq.entrypoint("nap")
    async def nap(job: Job) -> None:
        await tasks.anap()

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        await tasks.astamp(float(job.payload or b"0"))


@asynccontextmanager
async def factory() -> AsyncIterator[PgQueuer]:
    """The manager the worker process runs."""
    conn = await asyncpg.connect(config.PG_DSN)
    pgq = PgQueuer.from_asyncpg_connection(conn)
    register(pgq)
    try:
        yield pgq
    finally:
        await conn.close()


class PgQueuerPg(System):
    name = "pgqueuer"
    backend = "postgres"
    package = "pgqueuer"
    has_bulk = True
    bulk_note = f"Queries.enqueue with lists, {BULK_BATCH:,} per call"
    conn: asyncpg.Connection
    queries: Queries

    def settings(self, concurrency: int) -> str:
        if concurrency == self.drain_concurrency:
            return "batch_size=10 (default), no concurrency cap (default)"
        return f"batch_size=10, max_concurrent_tasks={concurrency}"

    async def setup(self) -> None:
        subprocess.run(
            [self.bin("pgq"), "--pg-dsn", config.PG_DSN, "install"],
            check=True,
            capture_output=True,
        )
        self.conn = await asyncpg.connect(config.PG_DSN)
        self.queries = Queries.from_asyncpg_connection(self.conn)

    async def enqueue_one(self, task: str, *args: float) -> None:
        await self.queries.enqueue(task, repr(args[0]).encode() if args else None)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            await self.queries.enqueue([task] * size, [None] * size, [0] * size)

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin("python"), "-m", __name__]

    async def teardown(self) -> None:
        await self.conn.close()


SYSTEM = PgQueuerPg


def run_worker() -> None:
    """Batch size 10 (the default); no concurrency cap unless asked for (the default)."""
    cap = None if PgQueuerPg.drain_concurrency == config.CONCURRENCY else config.CONCURRENCY
    asyncio.run(run(factory, batch_size=10, max_concurrent_tasks=cap))


if __name__ == "__main__":
    run_worker()
