"""The one small interface every system under test implements, and its context."""

from __future__ import annotations

import abc
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.effects import REDIS_URL, EffectsReader

NOOP, NAP, STAMP = "noop", "nap", "stamp"
"""The three tasks every system registers: ``noop()`` records its effect; ``nap()``
sleeps 50 ms then records; ``stamp(sent)`` records its pickup latency."""

PEERS_DIR = Path(__file__).resolve().parent.parent

IO_CONCURRENCY = 50
"""Jobs in flight for I/O-light work: the second drain, the pickup latency and the sleep
workload run every system at this concurrency."""


@dataclass(frozen=True)
class Context:
    """Where a system keeps its things during one run."""

    run_dir: Path
    """A temporary directory for this system (SQLite files, worker logs)."""
    pg_dsn: str
    """A PostgreSQL database created for this system alone, dropped afterwards."""
    redis_url: str = REDIS_URL
    """The harness's own Redis database (flushed before and after each system)."""


class System(abc.ABC):
    """A job system as the harness drives it.

    The module that defines a subclass also defines the system's tasks at import time,
    configured from the ``BENCH_*`` environment variables :meth:`worker_env` sets, so a
    worker process started on that module finds them.
    """

    name: str
    """The system's name in the table, e.g. ``"huey"``."""
    backend: str
    """Its store: ``"sqlite"``, ``"redis"`` or ``"postgres"``."""
    package: str
    """The distribution whose version is reported."""
    venv: str = "main"
    """Which harness virtualenv runs it (see ``harness/venvs.py``)."""
    drain_concurrency: int = 16
    """Jobs in flight in the one worker process during the first no-op drain (the
    second one runs at :data:`IO_CONCURRENCY`)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.effects = EffectsReader()

    @abc.abstractmethod
    def settings(self, concurrency: int) -> str:
        """How the worker is run at this concurrency, for the table."""

    async def setup(self) -> None:  # noqa: B027 - most systems need nothing
        """Create the store (schema, tables) before anything is enqueued."""

    @abc.abstractmethod
    async def enqueue_one(self, task: str, *args: float) -> None:
        """Enqueue one call of ``task`` with one client call."""

    async def enqueue_bulk(self, task: str, count: int) -> None:
        """Enqueue ``count`` calls of ``task`` with the system's bulk call."""
        raise NotImplementedError

    has_bulk: bool = False
    """Whether :meth:`enqueue_bulk` is implemented (the system has a bulk call)."""
    bulk_note: str = ""
    """How the bulk call batches, for the table."""

    @abc.abstractmethod
    def worker_command(self, concurrency: int) -> list[str]:
        """The command line that starts ONE worker process (or pool, where stated)."""

    def start_worker(self, concurrency: int) -> subprocess.Popen[bytes]:
        """Start the worker process in its own process group; output goes to a log."""
        log = self.ctx.run_dir / f"worker-{concurrency}.log"
        with log.open("ab") as out:
            return subprocess.Popen(
                self.worker_command(concurrency),
                cwd=self.ctx.run_dir,
                env=self.worker_env(concurrency),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def worker_env(self, concurrency: int) -> dict[str, str]:
        """The environment a worker (and this module, imported there) reads."""
        return {**os.environ, **bench_env(self.ctx, concurrency), "PYTHONUNBUFFERED": "1"}

    def bin(self, name: str) -> str:
        """A console script of the running virtualenv."""
        return str(Path(sys.executable).parent / name)

    def count_effects(self) -> int:
        """Jobs whose task has run, counted from the effects the tasks recorded."""
        return self.effects.count()

    async def teardown(self) -> None:  # noqa: B027 - most systems need nothing
        """Close connections; the harness drops the database and flushes Redis."""


def bench_env(ctx: Context, concurrency: int) -> dict[str, str]:
    """The ``BENCH_*`` variables a system module reads at import (see ``config.py``)."""
    return {
        "PYTHONPATH": str(PEERS_DIR),
        "BENCH_RUN_DIR": str(ctx.run_dir),
        "BENCH_PG_DSN": ctx.pg_dsn,
        "BENCH_REDIS_URL": ctx.redis_url,
        "BENCH_CONCURRENCY": str(concurrency),
    }
