"""The worker registry: register, heartbeat, stop requests, deregister, prune."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from workhorse.backends.base import Backend, WorkerInfo

from ._support import STORE_CLOCK, assert_time, at

_BASE = WorkerInfo(
    id="base", hostname="host-1", pid=4242, queues=("default", "mail"), concurrency=8
)


def _worker(worker_id: str, **changes: Any) -> WorkerInfo:
    return replace(_BASE, id=worker_id, **changes)


async def test_register_and_list(backend: Backend) -> None:
    assert await backend.worker_list() == []
    await backend.worker_register(worker=_worker("w1", meta={"version": "1.2"}))
    (record,) = await backend.worker_list()
    assert record.id == "w1"
    assert record.hostname == "host-1"
    assert record.pid == 4242
    assert record.queues == ("default", "mail")
    assert record.concurrency == 8
    assert record.meta == {"version": "1.2"}
    assert record.running == 0
    assert record.stop_requested is False
    assert_time(record.started_at, datetime.now(UTC), STORE_CLOCK)
    assert_time(record.heartbeat_at, datetime.now(UTC), STORE_CLOCK)


async def test_worker_on_every_queue(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("w-all", queues=None))
    (record,) = await backend.worker_list()
    assert record.queues is None


async def test_list_is_oldest_first(backend: Backend) -> None:
    for name in ("first", "second", "third"):
        await backend.worker_register(worker=_worker(name))
    assert [w.id for w in await backend.worker_list()] == ["first", "second", "third"]


async def test_register_replaces(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("w1", hostname="old", concurrency=1))
    await backend.worker_register(worker=_worker("w1", hostname="new", concurrency=4))
    (record,) = await backend.worker_list()
    assert (record.hostname, record.concurrency) == ("new", 4)


async def test_heartbeat_records_running_and_returns_stop(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("w1"))
    await backend.worker_register(worker=_worker("w2"))
    assert await backend.worker_heartbeat(worker_id="w1", running=3) is False
    (w1, w2) = await backend.worker_list()
    assert (w1.running, w2.running) == (3, 0)
    assert await backend.worker_request_stop(worker_id="w1") == 1
    assert await backend.worker_heartbeat(worker_id="w1", running=2) is True
    assert await backend.worker_heartbeat(worker_id="w2", running=0) is False
    stops = {w.id: w.stop_requested for w in await backend.worker_list()}
    assert stops == {"w1": True, "w2": False}


async def test_request_stop_for_all(backend: Backend) -> None:
    for name in ("a", "b", "c"):
        await backend.worker_register(worker=_worker(name))
    assert await backend.worker_request_stop() == 3
    assert all(w.stop_requested for w in await backend.worker_list())
    for name in ("a", "b", "c"):
        assert await backend.worker_heartbeat(worker_id=name, running=0) is True


async def test_request_stop_for_unknown_worker(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("a"))
    assert await backend.worker_request_stop(worker_id="ghost") == 0
    assert [w.stop_requested for w in await backend.worker_list()] == [False]


async def test_heartbeat_of_unknown_worker(backend: Backend) -> None:
    assert await backend.worker_heartbeat(worker_id="ghost", running=1) is False
    assert await backend.worker_list() == []


async def test_deregister(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("a"))
    await backend.worker_register(worker=_worker("b"))
    await backend.worker_deregister(worker_id="a")
    await backend.worker_deregister(worker_id="ghost")
    assert [w.id for w in await backend.worker_list()] == ["b"]


async def test_prune_by_heartbeat_age(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("a"))
    await backend.worker_register(worker=_worker("b"))
    real_now = datetime.now(UTC)
    assert await backend.worker_prune(older_than=60, now=at(real_now, 30)) == 0
    assert len(await backend.worker_list()) == 2
    assert await backend.worker_prune(older_than=60, now=at(real_now, 120)) == 2
    assert await backend.worker_list() == []


async def test_heartbeat_keeps_a_worker_from_pruning(backend: Backend) -> None:
    await backend.worker_register(worker=_worker("a"))
    (before,) = await backend.worker_list()
    assert await backend.worker_heartbeat(worker_id="a", running=0) is False
    (after,) = await backend.worker_list()
    assert after.heartbeat_at >= before.heartbeat_at
    assert await backend.worker_prune(older_than=60, now=at(after.heartbeat_at, 59)) == 0
    assert await backend.worker_prune(older_than=60, now=at(after.heartbeat_at, 61)) == 1
