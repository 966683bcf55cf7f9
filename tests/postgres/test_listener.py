"""LISTEN/NOTIFY: what wakes a listener, and how the listener survives losing its
connection (one warning, backoff, LISTEN again, then a wake-up for "anything")."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse.backends.base import Lease, NewJob, NewWorkflow, Outcome, WorkflowPart
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.config import parse_config
from workhorse.backends.postgres.inserting import COPY_THRESHOLD
from workhorse.backends.postgres.listener import Listener
from workhorse.backends.postgres.statements import Statements
from workhorse.jobs import JobState

from ._proxy import Proxy
from ._support import eventually, listening, notifications, sentinel
from .conftest import terminate

LOGGER = "workhorse.backends.postgres"


async def test_an_insert_wakes_each_of_its_queues_once(pg: PostgresBackend) -> None:
    async with listening(pg.listener()) as wakes:
        jobs = [NewJob(task="t", queue=q) for q in ("mail", "mail", "reports", "mail")]
        await pg.job_insert_many(jobs)
        assert sorted(str(q) for q in await sentinel(pg, wakes)) == ["mail", "reports"]


async def test_a_bulk_insert_wakes_each_of_its_queues_once(pg: PostgresBackend) -> None:
    async with listening(pg.listener()) as wakes:
        jobs = [NewJob(task="t", queue=f"q{i % 3}") for i in range(900)]
        await pg.job_insert_many(jobs)
        assert sorted(str(q) for q in await sentinel(pg, wakes)) == ["q0", "q1", "q2"]


async def test_delayed_jobs_wake_when_inserted_and_when_promoted(pg: PostgresBackend) -> None:
    async with listening(pg.listener()) as wakes:
        await pg.job_insert_many([NewJob(task="t", queue="later", delay=60)])
        assert await sentinel(pg, wakes) == ["later"], "idle workers look at the new due time"
        now = datetime.now(UTC) + timedelta(seconds=61)
        assert await pg.job_promote_scheduled(now=now) == 1
        assert await sentinel(pg, wakes) == ["later"]


@pytest.mark.parametrize("batch", [3, COPY_THRESHOLD], ids=["insert", "copy"])
async def test_each_insert_announces_each_queue_once_on_its_channel(
    pg: PostgresBackend, pg_url: str, batch: int
) -> None:
    sql = Statements(pg.schema)
    # Queue "mixed" gets due and delayed jobs: only the due ones are announced.
    jobs = [
        *(NewJob(task="t", queue="mixed") for _ in range(batch)),
        *(NewJob(task="t", queue="mixed", delay=60) for _ in range(batch)),
        *(NewJob(task="t", queue="later", delay=60) for _ in range(batch)),
    ]
    workflow = NewWorkflow(
        parts=[
            WorkflowPart(NewJob(task="w", queue="wf-later", delay=60)),
            WorkflowPart(NewJob(task="w", queue="wf-blocked"), after=(0,)),
        ]
    )
    async with notifications(pg_url, sql) as heard:
        await pg.job_insert_many(jobs)
        await pg.workflow_insert(workflow)
        await pg.job_insert_many([NewJob(task="sentinel", queue="sentinel")])
        assert sorted(await heard.until((sql.channel, "sentinel"))) == [
            (sql.channel, "mixed"),
            (sql.next_channel, "later"),
            (sql.next_channel, "wf-later"),
        ]


async def test_jobs_back_in_the_queue_wake(pg: PostgresBackend) -> None:
    await pg.job_insert_many([NewJob(task="t", queue="q", max_attempts=5)])
    async with listening(pg.listener()) as wakes:
        (job,) = await pg.job_claim(worker_id="w", queues=["q"], limit=1, lease_seconds=30)
        assert await pg.job_release([Lease(job.id, job.lease_token)]) == 1
        assert await sentinel(pg, wakes) == ["q"]

        await pg.job_claim(worker_id="w", queues=["q"], limit=1, lease_seconds=1)
        later = datetime.now(UTC) + timedelta(seconds=60)
        assert (await pg.job_reclaim_expired(now=later)).requeued == (job.id,)
        assert await sentinel(pg, wakes) == ["q"]


async def test_claims_and_completions_do_not_wake(pg: PostgresBackend) -> None:
    await pg.job_insert_many([NewJob(task="t", queue="q")])
    async with listening(pg.listener()) as wakes:
        (job,) = await pg.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
        await pg.job_heartbeat(
            worker_id="w", leases=[Lease(job.id, job.lease_token)], lease_seconds=30
        )
        assert await sentinel(pg, wakes) == []


async def test_retries_announce_when_they_are_due(pg: PostgresBackend, pg_url: str) -> None:
    sql = Statements(pg.schema)
    await pg.job_insert_many([NewJob(task="t", queue=q) for q in ("now", "later", "done")])
    claimed = await pg.job_claim(worker_id="w", queues=None, limit=3, lease_seconds=30)
    by_queue = {job.queue: job for job in claimed}
    outcomes = [
        Outcome(by_queue["now"].id, by_queue["now"].lease_token, JobState.SCHEDULED),
        Outcome(
            by_queue["later"].id,
            by_queue["later"].lease_token,
            JobState.SCHEDULED,
            retry_delay=60,
        ),
        Outcome(by_queue["done"].id, by_queue["done"].lease_token, JobState.COMPLETED),
    ]
    async with notifications(pg_url, sql) as heard:
        assert await pg.job_complete_many(outcomes) == [True, True, True]
        await pg.job_insert_many([NewJob(task="sentinel", queue="sentinel")])
        assert sorted(await heard.until((sql.channel, "sentinel"))) == [
            (sql.channel, "now"),
            (sql.next_channel, "later"),
        ]


async def test_releases_announce_each_queue_once_on_its_channel(
    pg: PostgresBackend, pg_url: str
) -> None:
    sql = Statements(pg.schema)
    after_first = [
        NewJob(task="w", queue="now"),
        NewJob(task="w", queue="later", delay=60),
        NewJob(task="w", queue="mixed"),
        NewJob(task="w", queue="mixed", delay=60),
    ]
    workflow = NewWorkflow(
        parts=[
            WorkflowPart(NewJob(task="first", queue="first")),
            *(WorkflowPart(job, after=(0,)) for job in after_first),
        ]
    )
    await pg.workflow_insert(workflow)
    (job,) = await pg.job_claim(worker_id="w", queues=["first"], limit=1, lease_seconds=30)
    async with notifications(pg_url, sql) as heard:
        done = Outcome(job.id, job.lease_token, JobState.COMPLETED)
        assert await pg.job_complete_many([done]) == [True]
        await pg.job_insert_many([NewJob(task="sentinel", queue="sentinel")])
        assert sorted(await heard.until((sql.channel, "sentinel"))) == [
            (sql.channel, "mixed"),
            (sql.channel, "now"),
            (sql.next_channel, "later"),
        ]


async def test_listener_comes_back_after_its_connection_is_terminated(
    pg: PostgresBackend,
    admin: psycopg.AsyncConnection[TupleRow],
    app_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    listener = pg.listener()
    async with listening(listener) as wakes:
        assert await terminate(admin, app_name) >= 1
        assert await wakes.next() is None, "after reconnecting, anything may have arrived"
        assert listener.connected.is_set()
        await pg.job_insert_many([NewJob(task="t", queue="after")])
        assert await wakes.until("after") == ["after"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "LISTEN" in warnings[0].getMessage()


async def test_one_warning_however_long_the_outage(
    pg: PostgresBackend, proxy_url: str, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    through_proxy = PostgresBackend(proxy_url)
    listener = through_proxy.listener()
    async with listening(listener) as wakes:
        await proxy.cut()

        async def failed_reconnects() -> bool:
            return sum("reconnect failed" in r.getMessage() for r in caplog.records) >= 3

        await eventually(failed_reconnects, what="three failed reconnects")
        assert not listener.connected.is_set()
        await proxy.start()
        assert await wakes.next() is None
        await pg.job_insert_many([NewJob(task="t", queue="back")])
        assert await wakes.until("back") == ["back"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1


async def test_watch_listens_until_cancelled_then_lets_go(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], app_name: str
) -> None:
    woken: asyncio.Queue[str | None] = asyncio.Queue()
    task = asyncio.create_task(pg.watch(woken.put_nowait))

    async def listeners() -> int:
        cur = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND query LIKE 'LISTEN%%'",
            [app_name],
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def one_listener() -> bool:
        return await listeners() == 1

    async def no_listener() -> bool:
        return await listeners() == 0

    await eventually(one_listener, what="the LISTEN connection")
    await pg.job_insert_many([NewJob(task="t", queue="watched")])
    assert await asyncio.wait_for(woken.get(), 10) == "watched"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(no_listener, what="the LISTEN connection to close")


async def test_a_quiet_listener_checks_its_connection(
    pg: PostgresBackend, pg_url: str, admin: psycopg.AsyncConnection[TupleRow], app_name: str
) -> None:
    conninfo = parse_config(pg_url, {}).conninfo
    listener = Listener(conninfo, [Statements(pg.schema).channel], ping_interval=0.02)

    async def pinged() -> bool:
        cur = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND query = 'SELECT 1'",
            [app_name],
        )
        row = await cur.fetchone()
        return bool(row and row[0])

    async with listening(listener) as wakes:
        await eventually(pinged, what="a ping on the quiet LISTEN connection")
        await pg.job_insert_many([NewJob(task="t", queue="still")])
        assert await wakes.until("still") == ["still"]
