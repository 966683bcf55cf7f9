"""Taskiq with taskiq-redis's list broker (one process; taskiq has no bulk kick)."""

from __future__ import annotations

from typing import Any

from harness import config, tasks
from harness.interface import NAP, NOOP, STAMP, System
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker(config.REDIS_URL, queue_name="bench")
TASKS: dict[str, Any] = {
    NOOP: broker.task(task_name=NOOP)(tasks.anoop),
    NAP: broker.task(task_name=NAP)(tasks.anap),
    STAMP: broker.task(task_name=STAMP)(tasks.astamp),
}


class TaskiqRedis(System):
    name = "taskiq"
    backend = "redis"
    package = "taskiq"

    def settings(self, concurrency: int) -> str:
        return f"ListQueueBroker, --workers 1 --max-async-tasks {concurrency}, no results"

    async def setup(self) -> None:
        await broker.startup()

    async def enqueue_one(self, task: str, *args: float) -> None:
        await TASKS[task].kiq(*args)

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            self.bin("taskiq"),
            "worker",
            f"{__name__}:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            str(concurrency),
            "--log-level",
            "WARNING",
        ]

    async def teardown(self) -> None:
        await broker.shutdown()


SYSTEM = TaskiqRedis
