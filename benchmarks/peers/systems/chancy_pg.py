"""Chancy on PostgreSQL: asyncio executor, notifications on (its default).

The worker process is this module run as a script (what ``chancy worker start`` does),
because a Chancy queue's concurrency lives in the database: it is declared on start.
"""

from __future__ import annotations

import asyncio
import logging

from chancy import Chancy, Job, Queue, Worker
from harness import config, tasks
from harness.interface import NAP, NOOP, STAMP, System

BULK_BATCH = 1_000
EXECUTOR = "chancy.executors.asyncex.AsyncExecutor"
FUNCS = {NOOP: tasks.anoop, NAP: tasks.anap, STAMP: tasks.astamp}


def queue(concurrency: int) -> Queue:
    """The benchmark queue at this concurrency.

    ``eager_polling``: fetch again as soon as a job ends. Without it a busy queue is
    read once per notification or per 5 s poll, which drains about 3 jobs/s here."""
    return Queue("bench", concurrency=concurrency, executor=EXECUTOR, eager_polling=True)


def quiet_logger() -> logging.Logger:
    """Chancy logs every job pulled at INFO through rich: warnings only, like the others."""
    log = logging.getLogger("chancy.bench")
    log.setLevel(logging.WARNING)
    log.addHandler(logging.StreamHandler())
    return log


async def run_worker() -> None:
    async with Chancy(config.PG_DSN, log=quiet_logger()) as chancy:
        await chancy.declare(queue(config.CONCURRENCY), upsert=True)
        async with Worker(chancy) as worker:
            await worker.wait_for_shutdown()


class ChancyPg(System):
    name = "chancy"
    backend = "postgres"
    package = "chancy"
    has_bulk = True
    bulk_note = f"push_many, {BULK_BATCH:,} per transaction"
    chancy: Chancy

    def settings(self, concurrency: int) -> str:
        return f"Queue(concurrency={concurrency}, AsyncExecutor, eager_polling), log WARNING"

    async def setup(self) -> None:
        self.chancy = Chancy(config.PG_DSN, log=quiet_logger())
        await self.chancy.__aenter__()
        await self.chancy.migrate()
        await self.chancy.declare(queue(self.drain_concurrency), upsert=True)

    async def enqueue_one(self, task: str, *args: float) -> None:
        job = Job.from_func(FUNCS[task], queue="bench")
        if args:
            job = job.with_kwargs(sent=args[0])
        await self.chancy.push(job)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        job = Job.from_func(FUNCS[task], queue="bench")
        async for _ in self.chancy.push_many([job] * count, batch_size=BULK_BATCH):
            pass

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin("python"), "-m", __name__]

    async def teardown(self) -> None:
        await self.chancy.__aexit__(None, None, None)


SYSTEM = ChancyPg

if __name__ == "__main__":
    asyncio.run(run_worker())
