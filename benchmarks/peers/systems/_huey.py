"""Huey, shared by its SQLite and Redis flavours: tasks, enqueue, consumer command."""

from __future__ import annotations

from typing import Any

from harness import tasks
from harness.interface import NAP, NOOP, STAMP, System


def register(huey: Any) -> dict[str, Any]:
    """Register the benchmark tasks on ``huey``; name -> task."""
    return {
        NOOP: huey.task(name=NOOP)(tasks.noop),
        NAP: huey.task(name=NAP)(tasks.nap),
        STAMP: huey.task(name=STAMP)(tasks.stamp),
    }


class HueySystem(System):
    """Huey driven through its consumer, thread workers (huey has no bulk enqueue)."""

    name = "huey"
    package = "huey"
    module: str
    huey_tasks: dict[str, Any]

    def settings(self, concurrency: int) -> str:
        return f"-k thread -w {concurrency}, default polling (0.1 s, backoff x1.15 to 10 s)"

    async def enqueue_one(self, task: str, *args: float) -> None:
        self.huey_tasks[task](*args)

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            self.bin("huey_consumer"),
            f"{self.module}.huey",
            "-k",
            "thread",
            "-w",
            str(concurrency),
            "--no-periodic",
            "-q",
        ]
