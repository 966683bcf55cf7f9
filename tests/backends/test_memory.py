"""What only ``memory://`` promises, beyond the conformance suite: one private store per
instance, usable from several event loops, refusing what it cannot honour, and keeping
its state out of the callers' reach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from workhorse.backends import open_backend
from workhorse.backends.base import Backend, JobFilter, Outcome, WorkerInfo
from workhorse.backends.memory import MemoryBackend
from workhorse.errors import ConfigurationError, SerializationError
from workhorse.jobs import JobState

from ._support import claim_one, get, insert_one, new_job


@pytest.fixture
async def memory() -> AsyncIterator[Backend]:
    store = open_backend("memory://")
    await store.connect()
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


def test_url_opens_a_memory_backend() -> None:
    store = open_backend("memory://")
    assert isinstance(store, MemoryBackend)
    assert store.url == "memory://"
    assert store.capabilities.shared_across_processes is False
    assert store.capabilities.change_feed is False
    assert store.capabilities.transactional_enqueue is False
    assert store.shared_across_loops is True
    assert store.migration_sql() == ""


def test_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="pool_size"):
        open_backend("memory://", pool_size=4)


async def test_each_instance_is_its_own_store(memory: Backend) -> None:
    other = open_backend("memory://")
    await insert_one(memory)
    assert await other.job_count(filter=JobFilter()) == 0
    assert await memory.job_count(filter=JobFilter()) == 1


async def test_watch_returns_at_once(memory: Backend) -> None:
    woken: list[str | None] = []
    await memory.watch(woken.append)
    assert woken == []


async def test_naive_datetimes_are_refused(memory: Backend) -> None:
    naive = datetime(2030, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        await memory.job_insert_many([new_job()], now=naive)
    with pytest.raises(ValueError, match="naive"):
        await memory.job_insert_many([new_job(run_at=naive)])
    assert await memory.job_count(filter=JobFilter()) == 0


async def test_transactional_enqueue_is_refused(memory: Backend) -> None:
    with pytest.raises(ValueError, match="transaction"):
        await memory.job_insert_many([new_job()], connection=object())


async def test_invalid_args_are_refused(memory: Backend) -> None:
    with pytest.raises(SerializationError, match=r"kwargs of task 'tests\.task'"):
        await memory.job_insert_many([new_job(), new_job(kwargs="{oops")])
    assert await memory.job_count(filter=JobFilter()) == 0


async def test_meta_that_is_not_json_is_refused(memory: Backend) -> None:
    with pytest.raises(SerializationError, match="meta"):
        await memory.job_insert_many([new_job(meta={"when": datetime.now(UTC)})])


async def test_an_attempt_cannot_end_running(memory: Backend) -> None:
    await insert_one(memory)
    job = await claim_one(memory, now=datetime.now(UTC))
    bad = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.RUNNING)
    with pytest.raises(ValueError, match="cannot end"):
        await memory.job_complete_many([bad])
    assert (await get(memory, job.id)).state is JobState.RUNNING


async def test_inputs_are_copied(memory: Backend) -> None:
    labels = {"team": "a"}
    meta: dict[str, object] = {"items": [1]}
    job_id = await insert_one(memory, labels=labels, meta=meta)
    labels["team"] = "b"
    meta["items"] = "changed"
    record = await get(memory, job_id)
    assert (record.labels, record.meta) == ({"team": "a"}, {"items": [1]})

    worker_meta: dict[str, object] = {"v": 1}
    await memory.worker_register(
        worker=WorkerInfo(id="w", hostname="h", pid=1, queues=None, concurrency=1, meta=worker_meta)
    )
    worker_meta["v"] = 2
    (worker,) = await memory.worker_list()
    assert worker.meta == {"v": 1}


async def test_claimed_meta_is_a_copy(memory: Backend) -> None:
    job_id = await insert_one(memory, meta={"k": [1]})
    job = await claim_one(memory, now=datetime.now(UTC))
    job.meta["k"].append(2)
    assert (await get(memory, job_id)).meta == {"k": [1]}
