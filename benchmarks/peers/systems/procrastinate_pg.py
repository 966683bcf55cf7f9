"""Procrastinate on PostgreSQL (psycopg 3 connector, LISTEN/NOTIFY)."""

from __future__ import annotations

from typing import Any

from harness import config, tasks
from harness.interface import NAP, NOOP, STAMP, System
from procrastinate import App, PsycopgConnector

BULK_BATCH = 1_000

app = App(connector=PsycopgConnector(conninfo=config.PG_DSN))


@app.task(name=NOOP)
async def noop() -> None:
    await tasks.anoop()


@app.task(name=NAP)
async def nap() -> None:
    await tasks.anap()


@app.task(name=STAMP)
async def stamp(sent: float) -> None:
    await tasks.astamp(sent)


TASKS: dict[str, Any] = {NOOP: noop, NAP: nap, STAMP: stamp}


class ProcrastinatePg(System):
    name = "procrastinate"
    backend = "postgres"
    package = "procrastinate"
    has_bulk = True
    bulk_note = f"batch_defer_async, {BULK_BATCH:,} per call"

    def settings(self, concurrency: int) -> str:
        return f"--concurrency {concurrency}, listen/notify, jobs kept (default)"

    async def setup(self) -> None:
        await app.open_async()
        await app.schema_manager.apply_schema_async()

    async def enqueue_one(self, task: str, *args: float) -> None:
        if args:
            await TASKS[task].defer_async(sent=args[0])
        else:
            await TASKS[task].defer_async()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            await TASKS[task].batch_defer_async(
                *({} for _ in range(min(BULK_BATCH, count - start)))
            )

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            self.bin("procrastinate"),
            f"--app={__name__}.app",
            "worker",
            f"--concurrency={concurrency}",
        ]

    async def teardown(self) -> None:
        await app.close_async()


SYSTEM = ProcrastinatePg
