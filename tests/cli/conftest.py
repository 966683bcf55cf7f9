"""A real SQLite store in tmp_path that CLI subprocesses and the test share, with helpers
to put jobs in every state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workhorse.backends import Backend, open_backend
from workhorse.backends.base import NewJob, Outcome
from workhorse.jobs import JobError, JobState

from ._support import Result, cli_env, workhorse

TRACEBACK = 'Traceback (most recent call last):\n  File "tasks.py", line 3\nValueError: bad input'


@dataclass
class Store:
    """The store of one test: its URL, a connected backend and the CLI's environment."""

    url: str
    backend: Backend
    cwd: Path

    @property
    def env(self) -> dict[str, str]:
        """Subprocess environment with this store as ``WORKHORSE_URL``."""
        return cli_env(self.url)

    def cli(self, *args: str) -> Result:
        """Run the CLI against this store."""
        return workhorse(*args, cwd=self.cwd, env=self.env)

    async def insert(self, *jobs: NewJob) -> list[int]:
        """Insert jobs; their ids."""
        return [row.id for row in await self.backend.job_insert_many(list(jobs))]

    async def finish(self, job_id: int, state: JobState, *, result: str = "null") -> None:
        """Claim ``job_id`` and end its attempt in ``state`` (failed ones get an error)."""
        [claimed] = await self.backend.job_claim(
            worker_id="cli-test", queues=None, limit=1, lease_seconds=30, job_ids=[job_id]
        )
        error = JobError("ValueError", "bad input", TRACEBACK) if state is JobState.FAILED else None
        await self.backend.job_complete_many(
            [
                Outcome(
                    job_id=job_id,
                    lease_token=claimed.lease_token,
                    state=state,
                    result=result if state is JobState.COMPLETED else None,
                    error=error,
                )
            ]
        )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated SQLite file in tmp_path."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    backend = open_backend(url)
    await backend.connect()
    await backend.migrate()
    try:
        yield Store(url, backend, tmp_path)
    finally:
        await backend.close()
