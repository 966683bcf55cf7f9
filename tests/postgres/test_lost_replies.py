"""A connection that dies after the server did the work but before the reply came back
(the proxy drops the reply and hangs up): writes that can find out what they did
answer as if nothing had happened, and the others say the outcome is unknown instead of
repeating themselves into a wrong answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from workhorse.backends.base import ClaimedJob, ClaimLimits, JobFilter, Lease, NewJob, Outcome
from workhorse.backends.postgres import PostgresBackend
from workhorse.errors import BackendUnavailableError
from workhorse.jobs import JobState

from ._proxy import Proxy

pytestmark = pytest.mark.postgres


@pytest.fixture
async def remote(proxy_url: str) -> AsyncIterator[PostgresBackend]:
    """A backend through the proxy with a single connection, so the reply the proxy
    loses is the one to the call under test."""
    store = PostgresBackend(proxy_url, min_size=1, max_size=1)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


async def _insert(pg: PostgresBackend, count: int) -> list[int]:
    rows = await pg.job_insert_many([NewJob(task="t", max_attempts=1) for _ in range(count)])
    return [row.id for row in rows]


async def _states(pg: PostgresBackend, ids: list[int]) -> list[JobState]:
    states = []
    for job_id in ids:
        record = await pg.job_get(job_id=job_id)
        assert record is not None
        states.append(record.state)
    return states


def _leases(jobs: list[ClaimedJob]) -> list[Lease]:
    return [Lease(job.id, job.lease_token) for job in jobs]


@pytest.mark.parametrize("limited", [False, True], ids=["claim", "limited-claim"])
async def test_a_claim_gets_the_jobs_it_took(
    pg: PostgresBackend, remote: PostgresBackend, proxy: Proxy, limited: bool
) -> None:
    ids = await _insert(pg, 3)
    proxy.lose_next_reply()
    if limited:
        claimed = await remote.job_claim_limited(
            worker_id="w",
            queues=["default"],
            limit=10,
            lease_seconds=30,
            limits=ClaimLimits(queues={"default": 5}),
        )
    else:
        claimed = await remote.job_claim(worker_id="w", queues=None, limit=10, lease_seconds=30)
    assert proxy.replies_lost == 1
    assert sorted(job.id for job in claimed) == ids, "the jobs the lost reply would have named"
    assert [job.attempt for job in claimed] == [1, 1, 1]
    # The leases are the ones the server handed out: the outcomes are accepted, and the
    # single attempt of each job was not lost on the way.
    outcomes = [Outcome(job.id, job.lease_token, JobState.COMPLETED) for job in claimed]
    assert await remote.job_complete_many(outcomes) == [True] * 3
    assert await _states(pg, ids) == [JobState.COMPLETED] * 3


async def test_outcomes_written_before_the_reply_was_lost_count_as_written(
    pg: PostgresBackend, remote: PostgresBackend, proxy: Proxy
) -> None:
    ids = await _insert(pg, 3)
    claimed = await remote.job_claim(worker_id="w", queues=None, limit=10, lease_seconds=30)
    stale = Outcome(claimed[0].id, "not-the-lease", JobState.FAILED)
    outcomes = [Outcome(job.id, job.lease_token, JobState.COMPLETED) for job in claimed]
    proxy.lose_next_reply()
    assert await remote.job_complete_many([*outcomes, stale]) == [True, True, True, False]
    assert proxy.replies_lost == 1
    assert await _states(pg, ids) == [JobState.COMPLETED] * 3


async def test_a_release_whose_reply_was_lost_counts_what_it_released(
    pg: PostgresBackend, remote: PostgresBackend, proxy: Proxy
) -> None:
    ids = await _insert(pg, 2)
    claimed = await remote.job_claim(worker_id="w", queues=None, limit=10, lease_seconds=30)
    proxy.lose_next_reply()
    assert await remote.job_release(_leases(claimed)) == 2
    assert proxy.replies_lost == 1
    assert await _states(pg, ids) == [JobState.QUEUED] * 2
    again = await pg.job_claim(worker_id="w", queues=None, limit=10, lease_seconds=30)
    assert [job.attempt for job in again] == [1, 1], "a release does not count the attempt"


async def test_a_heartbeat_is_simply_repeated(
    pg: PostgresBackend, remote: PostgresBackend, proxy: Proxy
) -> None:
    await _insert(pg, 1)
    claimed = await remote.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
    proxy.lose_next_reply()
    reply = await remote.job_heartbeat(worker_id="w", leases=_leases(claimed), lease_seconds=30)
    assert proxy.replies_lost == 1
    assert reply.lost == frozenset()


async def test_writes_that_cannot_tell_say_the_outcome_is_unknown(
    pg: PostgresBackend, remote: PostgresBackend, proxy: Proxy
) -> None:
    (failed,) = await _insert(pg, 1)
    (job,) = await pg.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
    await pg.job_complete_many([Outcome(job.id, job.lease_token, JobState.FAILED)])

    proxy.lose_next_reply()
    with pytest.raises(BackendUnavailableError, match="may or may not have taken effect"):
        await remote.job_retry(job_id=failed)
    assert await _states(pg, [failed]) == [JobState.QUEUED], "the retry did happen"

    assert await remote.job_get(job_id=failed) is not None  # reconnected: arm again
    proxy.lose_next_reply()
    with pytest.raises(BackendUnavailableError, match="may or may not have taken effect"):
        await remote.job_insert_many([NewJob(task="lost-reply")])
    assert proxy.replies_lost == 2
    newest = (await pg.job_list(filter=JobFilter(), limit=1))[0]
    assert newest.task == "lost-reply", "the insert did happen"
    # The store works on as before.
    assert (await remote.job_insert_many([NewJob(task="after")]))[0].created
