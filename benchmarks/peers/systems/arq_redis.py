"""arq on Redis (its own virtualenv: arq pins redis<6, Celery's kombu needs >=6.4)."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from harness import config, tasks
from harness.interface import System


async def noop(ctx: dict[str, Any]) -> None:
    await tasks.anoop()


async def nap(ctx: dict[str, Any]) -> None:
    await tasks.anap()


async def stamp(ctx: dict[str, Any], sent: float) -> None:
    await tasks.astamp(sent)


class WorkerSettings:
    """What ``arq systems.arq_redis.WorkerSettings`` runs."""

    functions = [noop, nap, stamp]
    redis_settings = RedisSettings.from_dsn(config.REDIS_URL)
    max_jobs = config.CONCURRENCY
    keep_result = 0


class ArqRedisSystem(System):
    name = "arq"
    backend = "redis"
    package = "arq"
    venv = "arq"
    pool: ArqRedis

    def settings(self, concurrency: int) -> str:
        return f"max_jobs={concurrency}, poll_delay=0.5 s (default), keep_result=0"

    async def setup(self) -> None:
        self.pool = await create_pool(WorkerSettings.redis_settings)

    async def enqueue_one(self, task: str, *args: float) -> None:
        await self.pool.enqueue_job(task, *args)

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin("arq"), f"{__name__}.WorkerSettings"]

    async def teardown(self) -> None:
        await self.pool.aclose()


SYSTEM = ArqRedisSystem
