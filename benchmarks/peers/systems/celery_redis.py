"""Celery on Redis, thread pool (the usual pool for I/O-light work without gevent)."""

from __future__ import annotations

from celery import Celery
from harness import config, tasks
from harness.interface import NAP, NOOP, STAMP, System

app = Celery("bench", broker=config.REDIS_URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
TASKS = {
    NOOP: app.task(name=NOOP)(tasks.noop),
    NAP: app.task(name=NAP)(tasks.nap),
    STAMP: app.task(name=STAMP)(tasks.stamp),
}


class CeleryRedis(System):
    name = "celery"
    backend = "redis"
    package = "celery"

    def settings(self, concurrency: int) -> str:
        return f"-P threads -c {concurrency}, prefetch x4 (default), no mingle/gossip"

    async def enqueue_one(self, task: str, *args: float) -> None:
        TASKS[task].delay(*args)

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            self.bin("celery"),
            "-A",
            __name__,
            "worker",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        ]


SYSTEM = CeleryRedis
