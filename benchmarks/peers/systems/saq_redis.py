"""SAQ on Redis."""

from __future__ import annotations

from harness import config
from saq import Queue

from systems._saq import SaqSystem, worker_settings

settings = worker_settings(Queue.from_url(config.REDIS_URL, name="bench"))


class SaqRedis(SaqSystem):
    backend = "redis"
    module = __name__
    queue = settings["queue"]


SYSTEM = SaqRedis
