"""Which writes wait for their WAL flush: enqueues and user actions do, a worker's
bookkeeping (claim, heartbeat, progress, outcome, release) does not, as on SQLite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from psycopg.rows import DictRow

from workhorse.backends.base import Lease, NewJob, Outcome, ProgressUpdate
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.jobs import JobState

pytestmark = pytest.mark.postgres


@pytest.fixture
def commit_levels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``synchronous_commit`` each statement of the backend commits with, read inside
    its transaction just before the commit."""
    levels: list[str] = []
    fetch = AsyncConnSession.fetch

    async def traced(
        self: AsyncConnSession, query: str, params: Mapping[str, Any]
    ) -> list[DictRow]:
        async with self.conn.transaction():
            rows = await fetch(self, query, params)
            cur = await self.conn.execute("SELECT current_setting('synchronous_commit')")
            row = await cur.fetchone()
            assert row is not None
            levels.append(str(row[0]))
        return rows

    monkeypatch.setattr(AsyncConnSession, "fetch", traced)
    return levels


async def test_bookkeeping_skips_the_flush_and_user_writes_keep_it(
    pg: PostgresBackend, commit_levels: list[str]
) -> None:
    def committed() -> list[str]:
        seen = list(commit_levels)
        commit_levels.clear()
        return seen

    await pg.job_insert_many([NewJob(task="t"), NewJob(task="t")])
    await pg.job_insert_many([NewJob(task="t")])
    assert committed() == ["on", "on"]
    jobs = await pg.job_claim(worker_id="w", queues=None, limit=3, lease_seconds=30)
    assert len(jobs) == 3
    assert committed() == ["off"]
    leases = [Lease(job_id=job.id, token=job.lease_token) for job in jobs]
    await pg.job_heartbeat(worker_id="w", leases=leases, lease_seconds=30)
    await pg.job_set_progress(
        [ProgressUpdate(job_id=jobs[0].id, lease_token=jobs[0].lease_token, progress=50.0)]
    )
    done = Outcome(job_id=jobs[0].id, lease_token=jobs[0].lease_token, state=JobState.COMPLETED)
    assert await pg.job_complete_many([done]) == [True]
    assert await pg.job_release(leases[1:2]) == 1
    assert committed() == ["off"] * 4
    assert await pg.job_cancel(job_id=jobs[2].id) is not None
    assert committed() == ["on"]
