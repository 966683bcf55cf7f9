"""Small writes (enqueues, claims) commit on the caller's thread when the database is free
at once, and give way to the connection thread otherwise: never waiting on the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from _polling import until
from workhorse.backends.base import JobFilter, NewJob
from workhorse.backends.sqlite import SQLiteBackend, inline
from workhorse.errors import BackendUnavailableError, SerializationError


@pytest.fixture(autouse=True)
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """No inline write or checkpoint counts as slow here (a loaded test machine would
    send writes or checkpoints to the thread for a while, which only the tests of those
    rules want)."""
    monkeypatch.setattr(inline, "SLOW_WRITE", 60.0)
    monkeypatch.setattr(inline, "SLOW_CHECKPOINT", 60.0)


def _commits(trace: list[str]) -> int:
    count = trace.count("COMMIT")
    trace.clear()
    return count


async def _traces(store: SQLiteBackend) -> tuple[list[str], list[str]]:
    thread: list[str] = []
    await store._db.read(lambda conn: conn.set_trace_callback(thread.append))
    caller: list[str] = []
    store._db._inline._connection().set_trace_callback(caller.append)
    return thread, caller


async def test_an_enqueue_commits_on_the_callers_thread(store: SQLiteBackend) -> None:
    thread, caller = await _traces(store)
    (job,) = await store.job_insert_many([NewJob(task="t")])
    assert (_commits(caller), _commits(thread)) == (1, 0)
    record = await store.job_get(job_id=job.id)
    assert record is not None
    assert record.task == "t"


async def test_a_lone_enqueue_commits_without_handing_the_loop_its_turn(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing else is ready to run: no write could join it, so it commits at once; and
    until inline writes have held the loop for ``TURN_EVERY`` in all, it returns
    without a pass of the loop (which would cost a lone enqueue a tenth of its time)."""
    monkeypatch.setattr(inline, "TURN_EVERY", 3600.0)
    thread, caller = await _traces(store)
    loop = asyncio.get_running_loop()
    assert not loop._ready  # type: ignore[attr-defined]  # nothing else ready to run
    for _ in range(3):
        enqueue = store.job_insert_many([NewJob(task="t")])
        with pytest.raises(StopIteration) as finished:
            enqueue.send(None)  # finished without suspending
        assert (_commits(caller), _commits(thread)) == (1, 0)
        (job,) = finished.value.value
        assert await store.job_get(job_id=job.id) is not None


async def test_inline_writes_hand_the_loop_its_turn_once_they_held_it_for_the_interval(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "TURN_EVERY", 0.0)  # every write has held it enough
    enqueue = store.job_insert_many([NewJob(task="t")])
    enqueue.send(None)  # suspended: the loop's turn
    with pytest.raises(StopIteration):
        enqueue.send(None)
    assert await store.job_count(filter=JobFilter()) == 1


async def test_a_loop_of_lone_enqueues_lets_the_loop_run_its_timers(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "CHECKPOINT_EVERY", 1_000_000)  # no checkpoint to wait for
    fired = asyncio.Event()
    asyncio.get_running_loop().call_later(0.001, fired.set)
    enqueued = 0
    while not fired.is_set() and enqueued < 1000:  # 1,000 enqueues take far over 1 ms
        await store.job_insert_many([NewJob(task="t")])
        enqueued += 1
    assert fired.is_set(), "the timer never ran while enqueues went on"


async def test_a_lone_enqueue_that_fails_raises_and_stores_nothing(store: SQLiteBackend) -> None:
    with pytest.raises(SerializationError):
        await store.job_insert_many([NewJob(task="t", args="not json")])
    assert await store.job_count(filter=JobFilter()) == 0


async def test_a_lone_enqueue_that_fails_behind_another_writer_raises_and_stores_nothing(
    store: SQLiteBackend, db_path: Path
) -> None:
    thread, _ = await _traces(store)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the enqueue gives way to the connection thread
    try:
        failing = asyncio.create_task(store.job_insert_many([NewJob(task="t", args="[1,")]))
        await until(lambda: "BEGIN IMMEDIATE" in thread, what="the thread waiting for the lock")
        other.execute("COMMIT")
        with pytest.raises(SerializationError, match="not valid JSON"):
            await asyncio.wait_for(failing, 10)
    finally:
        other.close()
    assert await store.job_count(filter=JobFilter()) == 0


async def test_enqueues_of_one_loop_iteration_share_one_commit(store: SQLiteBackend) -> None:
    thread, caller = await _traces(store)
    inserted = await asyncio.gather(*(store.job_insert_many([NewJob(task="t")]) for _ in range(50)))
    assert (_commits(caller), _commits(thread)) == (1, 0)
    ids = [job.id for (job,) in inserted]
    assert len(set(ids)) == 50
    assert await store.job_count(filter=JobFilter()) == 50


async def test_a_failing_write_fails_alone_in_its_group(store: SQLiteBackend) -> None:
    bad = NewJob(task="t", args="not json")
    results = await asyncio.gather(
        store.job_insert_many([NewJob(task="t")]),
        store.job_insert_many([bad]),
        store.job_insert_many([NewJob(task="t")]),
        return_exceptions=True,
    )
    assert isinstance(results[1], SerializationError)
    assert [type(r) for r in (results[0], results[2])] == [list, list]
    assert await store.job_count(filter=JobFilter()) == 2


async def test_an_idle_workers_claim_commits_on_the_callers_thread(store: SQLiteBackend) -> None:
    await store.job_insert_many([NewJob(task="t")])
    thread, caller = await _traces(store)
    (job,) = await store.job_claim(worker_id="w", queues=None, limit=5, lease_seconds=30)
    assert (_commits(caller), _commits(thread)) == (1, 0)
    record = await store.job_get(job_id=job.id)
    assert record is not None
    assert record.state == "running"


async def test_a_claim_that_finds_nothing_takes_no_write_lock(store: SQLiteBackend) -> None:
    thread, caller = await _traces(store)
    assert await store.job_claim(worker_id="w", queues=None, limit=5, lease_seconds=30) == []
    assert [s for s in caller + thread if s.startswith("BEGIN")] == []


async def _claim_one(store: SQLiteBackend) -> int:
    (job,) = await store.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
    return job.id


async def _enqueue_one(store: SQLiteBackend) -> int:
    (job,) = await store.job_insert_many([NewJob(task="t")])
    return job.id


@pytest.mark.parametrize("write", ["enqueue", "claim"])
async def test_a_locked_database_sends_the_write_to_the_thread_without_blocking_the_loop(
    store: SQLiteBackend, db_path: Path, write: str
) -> None:
    if write == "claim":
        await store.job_insert_many([NewJob(task="t")])
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticking = asyncio.create_task(ticker())
    try:
        writing = asyncio.create_task(
            _claim_one(store) if write == "claim" else _enqueue_one(store)
        )
        deadline = time.monotonic() + 10
        while ticks < 20:  # the loop runs on while the write waits for the lock
            assert time.monotonic() < deadline
            assert not writing.done()
            await asyncio.sleep(0.001)
        other.execute("COMMIT")
        job_id = await asyncio.wait_for(writing, 10)
    finally:
        ticking.cancel()
        other.close()
    record = await store.job_get(job_id=job_id)
    assert record is not None
    assert record.state == ("running" if write == "claim" else "queued")


def _inline_open(store: SQLiteBackend) -> bool:
    """Whether inline writes are taken again (not cooling down, not checkpointing)."""
    try:
        store._db._inline.read(lambda conn: None)
    except inline.GaveWay:
        return False
    return True


def _taking(seconds: float) -> Callable[[sqlite3.Connection], None]:
    """A write whose commit takes ``seconds``, as on a slow or stalled disk."""

    def write(conn: sqlite3.Connection) -> None:
        time.sleep(seconds)  # the disk itself, not a wait for anything

    return write


async def test_slow_inline_writes_in_a_row_send_writes_to_the_thread_for_a_while(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "SLOW_WRITE", 0.002)
    monkeypatch.setattr(inline, "COOL_DOWN", 0.2)
    thread, caller = await _traces(store)
    slow_writes = 0
    while True:
        try:
            store._db._inline.write(_taking(0.01))  # five times SLOW_WRITE
        except inline.GaveWay:
            break
        slow_writes += 1
        assert slow_writes < 30, "slow writes never sent the writes to the thread"
    # Each counts as STALL (4 ms): from an average of 0 it passes 2 ms at the fourteenth.
    assert 12 <= slow_writes <= 14
    await store.job_insert_many([NewJob(task="t")])
    assert (_commits(caller), _commits(thread)) == (slow_writes, 1)
    await until(lambda: _inline_open(store), what="the end of the cool-down")
    await store.job_insert_many([NewJob(task="t")])
    assert (_commits(caller), _commits(thread)) == (1, 0)


async def test_one_stalled_inline_write_does_not_send_writes_to_the_thread(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "SLOW_WRITE", 0.002)
    thread, caller = await _traces(store)
    await store.job_insert_many([NewJob(task="t")])
    # A preempted thread, an fsync behind the disk's other work: 50 ms, once.
    store._db._inline.write(_taking(0.05))
    await store.job_insert_many([NewJob(task="t")])
    assert (_commits(caller), _commits(thread)) == (3, 0)


CHECKPOINT = "PRAGMA wal_checkpoint(FULL)"


def _wal_restarts(db_path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time a writer
    starts the WAL over, which it does only once every frame was copied back."""
    with Path(f"{db_path}-wal").open("rb") as wal:
        return int.from_bytes(wal.read(32)[12:16], "big")


async def _thread_checkpointed(store: SQLiteBackend, thread: list[str]) -> None:
    deadline = time.monotonic() + 10
    while CHECKPOINT not in thread:
        assert time.monotonic() < deadline, thread
        await store._db.read(lambda conn: None)  # runs after the posted checkpoint


async def test_an_inline_writer_checkpoints_after_its_commit_when_nothing_is_in_the_way(
    store: SQLiteBackend, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread, caller = await _traces(store)
    monkeypatch.setattr(inline, "CHECKPOINT_EVERY", 3)
    for _ in range(3):
        await store.job_insert_many([NewJob(task="t")])
    assert caller[-1] == CHECKPOINT  # right after the third commit, on this thread
    assert _commits(caller) == 3
    assert CHECKPOINT not in thread
    # SQLite never checkpoints on its own there, at a moment of its choosing.
    conn = store._db._inline._connection()
    assert int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
    # Every frame went back, so the next write starts the WAL over; no inline writer
    # gives way to the thread.
    restarts = _wal_restarts(db_path)
    await store.job_insert_many([NewJob(task="t")])
    assert _wal_restarts(db_path) == restarts + 1
    assert (_commits(caller), _commits(thread)) == (1, 0)


async def test_a_checkpoint_a_reader_holds_up_goes_to_the_thread(
    store: SQLiteBackend, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.job_insert_many([NewJob(task="t")])
    thread, caller = await _traces(store)
    monkeypatch.setattr(inline, "CHECKPOINT_EVERY", 3)
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM workhorse_jobs").fetchone()  # holds a snapshot
        for _ in range(2):
            await store.job_insert_many([NewJob(task="t")])
        # The inline checkpoint cannot copy the frames after the reader's snapshot:
        # it does not wait for the reader, and the connection thread takes over.
        assert caller[-1] == CHECKPOINT
        await _thread_checkpointed(store, thread)
    finally:
        reader.close()
    assert _commits(caller) == 2
    assert await store.job_count(filter=JobFilter()) == 3
    # Once the thread's checkpoint is done, enqueues commit on the caller's thread again.
    await until(lambda: _inline_open(store), what="the end of the thread's checkpoint")
    thread.clear()
    await store.job_insert_many([NewJob(task="t")])
    assert (_commits(caller), _commits(thread)) == (1, 0)


async def test_a_slow_inline_checkpoint_sends_checkpoints_to_the_thread_for_a_while(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread, caller = await _traces(store)
    monkeypatch.setattr(inline, "CHECKPOINT_EVERY", 2)
    monkeypatch.setattr(inline, "SLOW_CHECKPOINT", 0.0)  # any checkpoint is slow
    monkeypatch.setattr(inline, "COOL_DOWN", 3600.0)
    for _ in range(2):
        await store.job_insert_many([NewJob(task="t")])
    assert caller.count(CHECKPOINT) == 1  # made inline, and found slow
    assert CHECKPOINT not in thread
    caller.clear()
    for _ in range(2):
        await store.job_insert_many([NewJob(task="t")])
    await _thread_checkpointed(store, thread)
    assert CHECKPOINT not in caller
    assert _commits(caller) == 2  # the enqueues themselves stay inline
    assert await store.job_count(filter=JobFilter()) == 4


async def test_enqueues_without_a_pause_keep_the_wal_from_growing(
    store: SQLiteBackend, db_path: Path
) -> None:
    # A checkpoint that writers outrun never lets the WAL start over: the file would
    # grow by every commit (about four pages an enqueue) for as long as they keep coming.
    rounds = 8
    for _ in range(rounds * inline.CHECKPOINT_EVERY):
        await store.job_insert_many([NewJob(task="t")])
    page_size = store._db._inline._connection().execute("PRAGMA page_size").fetchone()[0]
    frames = (Path(f"{db_path}-wal").stat().st_size - 32) // (page_size + 24)
    assert frames < 2 * inline.CHECKPOINT_EVERY * 8, frames
    assert await store.job_count(filter=JobFilter()) == rounds * inline.CHECKPOINT_EVERY


async def test_a_closed_store_refuses_and_a_reopened_one_writes_inline_again(
    store: SQLiteBackend,
) -> None:
    await store.close()
    with pytest.raises(BackendUnavailableError, match="not connected"):
        await store.job_insert_many([NewJob(task="t")])
    await store.connect()
    thread, caller = await _traces(store)
    await store.job_insert_many([NewJob(task="t")])
    assert (_commits(caller), _commits(thread)) == (1, 0)
