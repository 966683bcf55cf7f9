"""streaq on Redis streams (it has a pipelined bulk enqueue)."""

from __future__ import annotations

from typing import Any

from harness import config, tasks
from harness.interface import NAP, NOOP, STAMP, System
from streaq import Worker

BULK_BATCH = 1_000

worker = Worker(redis_url=config.REDIS_URL, concurrency=config.CONCURRENCY, queue_name="bench")
TASKS: dict[str, Any] = {
    name: worker.task(name=name, silent=True, ttl=0)(fn)
    for name, fn in ((NOOP, tasks.anoop), (NAP, tasks.anap), (STAMP, tasks.astamp))
}


class StreaqRedis(System):
    name = "streaq"
    backend = "redis"
    package = "streaq"
    has_bulk = True
    bulk_note = f"Worker.enqueue_many, {BULK_BATCH:,} per pipeline"

    def settings(self, concurrency: int) -> str:
        return f"concurrency={concurrency}, silent tasks, ttl=0 (no results kept)"

    async def setup(self) -> None:
        await worker.__aenter__()

    async def enqueue_one(self, task: str, *args: float) -> None:
        await TASKS[task].enqueue(*args)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            await worker.enqueue_many([TASKS[task].enqueue() for _ in range(size)])

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin("streaq"), "run", f"{__name__}:worker"]

    async def teardown(self) -> None:
        await worker.__aexit__(None, None, None)


SYSTEM = StreaqRedis
