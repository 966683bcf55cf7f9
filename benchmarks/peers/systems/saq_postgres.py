"""SAQ on PostgreSQL (LISTEN/NOTIFY wake-ups)."""

from __future__ import annotations

from harness import config
from saq import Queue

from systems._saq import SaqSystem, worker_settings

settings = worker_settings(Queue.from_url(config.PG_DSN, name="bench"))


class SaqPostgres(SaqSystem):
    backend = "postgres"
    module = __name__
    queue = settings["queue"]


SYSTEM = SaqPostgres
