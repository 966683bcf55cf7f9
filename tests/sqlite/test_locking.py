"""Another connection holding the write lock: writes wait it out (retrying quietly past
``busy_timeout``), give up with a clear error after ``lock_timeout``, and idle claims and
maintenance never need the lock at all."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest

from workhorse.backends.base import JobFilter, NewJob
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.errors import BackendUnavailableError

LOGGER = "workhorse.backends.sqlite"


async def _connected(url: str) -> SQLiteBackend:
    store = SQLiteBackend(url)
    await store.connect()
    return store


async def test_a_write_outlasts_a_lock_held_past_busy_timeout(
    store: SQLiteBackend, raw: sqlite3.Connection, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    impatient = await _connected(f"{db_url}?busy_timeout=0.01")
    try:
        caplog.set_level(logging.DEBUG, logger=LOGGER)
        raw.execute("BEGIN IMMEDIATE")
        insert = asyncio.create_task(impatient.job_insert_many([NewJob(task="t")]))
        deadline = time.monotonic() + 10
        while not any("is locked" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the write never met the lock"
            assert not insert.done(), "the write went through a held lock"
            await asyncio.sleep(0.01)
        raw.execute("COMMIT")
        (row,) = await insert
        assert row.created
    finally:
        await impatient.close()
    retries = [r for r in caplog.records if "is locked" in r.getMessage()]
    assert retries
    assert all(r.levelno == logging.DEBUG for r in retries[:20])
    assert all(r.levelno < logging.ERROR for r in caplog.records)


async def test_a_lock_held_past_lock_timeout_is_an_error(
    store: SQLiteBackend, raw: sqlite3.Connection, db_url: str
) -> None:
    impatient = await _connected(f"{db_url}?busy_timeout=0.01&lock_timeout=0.2")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(BackendUnavailableError, match="locked"):
                await impatient.job_insert_many([NewJob(task="t")])
        finally:
            raw.execute("COMMIT")
        assert await store.job_count(filter=JobFilter()) == 0
        (row,) = await impatient.job_insert_many([NewJob(task="t")])
        assert row.created
    finally:
        await impatient.close()


async def test_idle_claims_and_maintenance_take_no_write_lock(
    store: SQLiteBackend, raw: sqlite3.Connection
) -> None:
    now = datetime.now(UTC)
    await store.job_insert_many([NewJob(task="later", delay=3600)] * 100, now=now)
    raw.execute("BEGIN IMMEDIATE")
    try:
        # Each of these would wait busy_timeout (5 s) for the lock if it asked for it.
        async with asyncio.timeout(2):
            for queues in (None, ["default"], ["default", "other"], ["empty"]):
                assert (
                    await store.job_claim(
                        worker_id="w", queues=queues, limit=10, lease_seconds=30, now=now
                    )
                    == []
                )
            assert await store.job_promote_scheduled(now=now) == 0
            assert await store.job_prune(now=now) == 0
            assert (await store.job_reclaim_expired(now=now)).requeued == ()
    finally:
        raw.execute("COMMIT")
    later = now + timedelta(hours=2)
    claimed = await store.job_claim(
        worker_id="w", queues=None, limit=200, lease_seconds=30, now=later
    )
    assert len(claimed) == 100
