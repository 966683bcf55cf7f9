"""SAQ, shared by its Redis and PostgreSQL flavours (SAQ has no bulk enqueue)."""

from __future__ import annotations

from typing import Any

from harness import config, tasks
from harness.interface import System
from saq import Queue


async def noop(ctx: dict[str, Any]) -> None:
    await tasks.anoop()


async def nap(ctx: dict[str, Any]) -> None:
    await tasks.anap()


async def stamp(ctx: dict[str, Any], *, sent: float) -> None:
    await tasks.astamp(sent)


def worker_settings(queue: Queue) -> dict[str, Any]:
    """The settings dict ``saq MODULE.settings`` runs."""
    return {"queue": queue, "functions": [noop, nap, stamp], "concurrency": config.CONCURRENCY}


class SaqSystem(System):
    name = "saq"
    package = "saq"
    queue: Queue
    module: str

    def settings(self, concurrency: int) -> str:
        return f"concurrency={concurrency}, default timers"

    async def setup(self) -> None:
        await self.queue.connect()

    async def enqueue_one(self, task: str, *args: float) -> None:
        if args:
            await self.queue.enqueue(task, sent=args[0])
        else:
            await self.queue.enqueue(task)

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin("saq"), f"{self.module}.settings"]

    async def teardown(self) -> None:
        await self.queue.disconnect()
