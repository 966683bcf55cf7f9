"""RQ on Redis: a non-forking SimpleWorker (RQ runs one job at a time per process)."""

from __future__ import annotations

from harness import config
from harness.interface import NAP, NOOP, STAMP, Context, System
from redis import Redis
from rq import Queue

FUNCS = {name: f"harness.tasks.{name}" for name in (NOOP, NAP, STAMP)}
"""RQ imports a job's function by its dotted path in the worker."""
BULK_BATCH = 1_000


class RQRedis(System):
    name = "rq"
    backend = "redis"
    package = "rq"
    drain_concurrency = 1
    has_bulk = True
    bulk_note = f"Queue.enqueue_many, {BULK_BATCH:,} per pipeline"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.queue = Queue("bench", connection=Redis.from_url(config.REDIS_URL))

    def settings(self, concurrency: int) -> str:
        if concurrency == 1:
            return "rq worker -w SimpleWorker (no fork per job), 1 job at a time"
        return f"rq worker-pool -n {concurrency} (SimpleWorker processes)"

    async def enqueue_one(self, task: str, *args: float) -> None:
        self.queue.enqueue(FUNCS[task], *args, result_ttl=0)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            datas = [Queue.prepare_data(FUNCS[task], result_ttl=0) for _ in range(size)]
            self.queue.enqueue_many(datas)

    def worker_command(self, concurrency: int) -> list[str]:
        common = ["-u", config.REDIS_URL, "-w", "rq.worker.SimpleWorker"]
        if concurrency == 1:
            return [self.bin("rq"), "worker", *common, "--logging_level", "WARNING", "bench"]
        return [self.bin("rq"), "worker-pool", *common, "-n", str(concurrency), "bench"]


SYSTEM = RQRedis
