"""Dramatiq on Redis: one process, worker threads."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from harness import config, tasks
from harness.interface import NAP, NOOP, STAMP, System

broker = RedisBroker(url=config.REDIS_URL)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
TASKS = {
    name: dramatiq.actor(actor_name=name, queue_name="bench", max_retries=0)(fn)
    for name, fn in ((NOOP, tasks.noop), (NAP, tasks.nap), (STAMP, tasks.stamp))
}


class DramatiqRedis(System):
    name = "dramatiq"
    backend = "redis"
    package = "dramatiq"

    def settings(self, concurrency: int) -> str:
        return f"-p 1 -t {concurrency} (threads), default prefetch"

    async def enqueue_one(self, task: str, *args: float) -> None:
        TASKS[task].send(*args)

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin("dramatiq"), __name__, "-p", "1", "-t", str(concurrency), "-Q", "bench"]


SYSTEM = DramatiqRedis
