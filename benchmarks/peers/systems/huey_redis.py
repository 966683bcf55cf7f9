"""Huey on Redis (blocking pops)."""

from __future__ import annotations

from harness import config
from huey import RedisHuey

from systems._huey import HueySystem, register

huey = RedisHuey("bench", url=config.REDIS_URL, results=False)
TASKS = register(huey)


class HueyRedis(HueySystem):
    backend = "redis"
    module = __name__
    huey_tasks = TASKS


SYSTEM = HueyRedis
