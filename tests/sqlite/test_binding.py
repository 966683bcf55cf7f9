"""The store's parameters skip the sqlite3 module's adaptation lookups (binding.py): its
states bind as plain text, and None finds its adapter at once; NULL is still NULL, and
an adapter someone else registered for None is left alone."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from workhorse.backends.base import NewJob
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.binding import bind_none_directly
from workhorse.backends.sqlite.rows import insert_params
from workhorse.jobs import JobState

NONE_KEY = (type(None), sqlite3.PrepareProtocol)


@pytest.fixture
def adapters() -> Iterator[dict[object, object]]:
    """The process's sqlite3 adapter registry, given back as it was."""
    registry: dict[object, object] = sqlite3.adapters  # type: ignore[assignment]
    saved = dict(registry)
    try:
        yield registry
    finally:
        registry.clear()
        registry.update(saved)


def test_states_bind_as_plain_text() -> None:
    params, state, _ = insert_params(NewJob(task="t"), time.time())
    assert state is JobState.QUEUED
    assert type(params[2]) is str
    assert params[2] == "queued"


async def test_none_binds_null_through_its_adapter(store: SQLiteBackend) -> None:
    assert NONE_KEY in sqlite3.adapters  # the store registered it when it opened
    (row,) = await store.job_insert_many([NewJob(task="t", tenant=None, timeout=None)])
    record = await store.job_get(job_id=row.id)
    assert record is not None
    assert record.tenant is None
    assert record.timeout is None
    conn = sqlite3.connect(":memory:")
    try:
        assert conn.execute("SELECT ? IS NULL, typeof(?)", (None, None)).fetchone() == (
            1,
            "null",
        )
    finally:
        conn.close()


def test_an_adapter_registered_by_someone_else_stays(adapters: dict[object, object]) -> None:
    def theirs(value: None) -> str:
        return "nothing"

    sqlite3.register_adapter(type(None), theirs)
    bind_none_directly()
    assert adapters[NONE_KEY] is theirs


def test_registering_twice_keeps_one_adapter(adapters: dict[object, object]) -> None:
    adapters.pop(NONE_KEY, None)
    bind_none_directly()
    first = adapters[NONE_KEY]
    bind_none_directly()
    assert adapters[NONE_KEY] is first


async def test_a_job_that_sets_no_optional_column_binds_none_of_them(
    store: SQLiteBackend,
) -> None:
    statements: list[str] = []
    await store._db.read(lambda conn: conn.set_trace_callback(statements.append))
    store._db._inline._connection().set_trace_callback(statements.append)
    (row,) = await store.job_insert_many([NewJob(task="t")])
    (insert,) = [sql for sql in statements if "INSERT INTO workhorse_jobs" in sql]
    values = insert.split("VALUES", 1)[1]  # the trace shows them bound
    assert "NULL" not in values
    record = await store.job_get(job_id=row.id)
    assert record is not None
    assert (record.timeout, record.tenant, record.labels, record.parent_id, record.meta) == (
        None,
        None,
        {},
        None,
        {},
    )


@pytest.mark.parametrize(
    "option",
    [
        {"timeout": 5.0},
        {"tenant": "acme"},
        {"labels": {"team": "a"}},
        {"parent_id": 1},
        {"meta": {"origin": "api"}},
    ],
)
async def test_a_job_that_sets_an_optional_column_keeps_it(
    store: SQLiteBackend, option: dict[str, object]
) -> None:
    (row,) = await store.job_insert_many([NewJob(task="t", **option)])  # type: ignore[arg-type]
    record = await store.job_get(job_id=row.id)
    assert record is not None
    ((column, value),) = option.items()
    assert getattr(record, column) == value
