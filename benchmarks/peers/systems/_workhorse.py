"""workhorse, shared by its SQLite and PostgreSQL flavours."""

from __future__ import annotations

from typing import Any

from harness import tasks
from harness.interface import NAP, NOOP, STAMP, System

from workhorse import Workhorse


def register(app: Workhorse) -> dict[str, Any]:
    """The benchmark tasks on ``app``; name -> task."""
    return {
        NOOP: app.task(name=NOOP)(tasks.anoop),
        NAP: app.task(name=NAP)(tasks.anap),
        STAMP: app.task(name=STAMP)(tasks.astamp),
    }


class WorkhorseSystem(System):
    name = "workhorse"
    package = "workhorse"
    has_bulk = True
    bulk_note = "app.enqueue_many, all jobs in one call"
    app: Workhorse
    workhorse_tasks: dict[str, Any]
    module: str

    def settings(self, concurrency: int) -> str:
        return f"workhorse worker start --concurrency {concurrency} --log-level warning"

    async def setup(self) -> None:
        await self.app.migrate()

    async def enqueue_one(self, task: str, *args: float) -> None:
        await self.workhorse_tasks[task].enqueue(*args)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        call = self.workhorse_tasks[task].call
        await self.app.enqueue_many([call() for _ in range(count)])

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            self.bin("workhorse"),
            "worker",
            "start",
            f"{self.module}:app",
            "--concurrency",
            str(concurrency),
            "--log-level",
            "warning",
        ]

    async def teardown(self) -> None:
        await self.app.aclose()
