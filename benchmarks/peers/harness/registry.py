"""Every system the harness runs, in table order, and what each needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """A module under ``systems/`` and how to run it."""

    module: str
    venv: str = "main"
    postgres: bool = False


ENTRIES = [
    Entry("workhorse_sqlite"),
    Entry("workhorse_sqlite_normal"),
    Entry("workhorse_postgres", postgres=True),
    Entry("huey_sqlite"),
    Entry("huey_redis"),
    Entry("rq_redis"),
    Entry("celery_redis"),
    Entry("dramatiq_redis"),
    Entry("arq_redis", venv="arq"),
    Entry("saq_redis"),
    Entry("saq_postgres", postgres=True),
    Entry("procrastinate_pg", postgres=True),
    Entry("pgqueuer_pg", postgres=True),
    Entry("taskiq_redis"),
    Entry("streaq_redis"),
    Entry("chancy_pg", postgres=True),
]
