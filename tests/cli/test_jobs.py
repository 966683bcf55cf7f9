"""``workhorse jobs list/show/cancel/retry/purge`` against a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from workhorse.backends.base import JobFilter, NewJob, Outcome
from workhorse.jobs import FINAL_STATES, JobState

from .conftest import Store


def _job(task: str = "acceptance.add", **fields: Any) -> NewJob:
    return NewJob(task=task, args="[1, 2]", **fields)


async def test_list_shows_jobs_newest_first_and_filters(store: Store) -> None:
    ids = await store.insert(_job(queue="a"), _job(queue="b"), _job("acceptance.boom", queue="a"))
    await store.finish(ids[2], JobState.FAILED)

    everything = store.cli("jobs", "list")
    failed = store.cli("jobs", "list", "--state", "failed", "--json")
    in_a = store.cli("jobs", "list", "-q", "a", "--json")
    by_task = store.cli("jobs", "list", "--task", "acceptance.add", "-s", "queued,failed", "--json")

    assert everything.code == 0, everything.stderr
    rows = [line.split()[0] for line in everything.stdout.splitlines()[1:]]
    assert rows == [str(i) for i in reversed(ids)]
    assert "ValueError: bad input" in everything.stdout
    assert [job["id"] for job in json.loads(failed.stdout)] == [ids[2]]
    assert [job["id"] for job in json.loads(in_a.stdout)] == [ids[2], ids[0]]
    assert [job["id"] for job in json.loads(by_task.stdout)] == [ids[1], ids[0]]


async def test_list_pages_with_limit_and_before_id(store: Store) -> None:
    ids = await store.insert(*(_job() for _ in range(5)))

    first = store.cli("jobs", "list", "--limit", "2")
    second = store.cli("jobs", "list", "--limit", "2", "--before-id", str(ids[3]), "--json")

    assert f"next page: --before-id {ids[3]}" in first.stderr
    assert [job["id"] for job in json.loads(second.stdout)] == [ids[2], ids[1]]


async def test_list_of_an_empty_store_says_so(store: Store) -> None:
    result = store.cli("jobs", "list")

    assert result.code == 0
    assert result.stdout == ""
    assert "no jobs match" in result.stderr


async def test_show_prints_every_field_and_the_traceback(store: Store) -> None:
    [job_id] = await store.insert(
        _job("acceptance.boom", tenant="acme", labels={"team": "red"}, unique_key="k-1")
    )
    await store.finish(job_id, JobState.FAILED)

    table = store.cli("jobs", "show", str(job_id))
    as_json = store.cli("jobs", "show", str(job_id), "--json")

    assert table.code == 0, table.stderr
    for expected in ("acceptance.boom", "failed", "acme", '{"team":"red"}', "k-1", "1 of 3"):
        assert expected in table.stdout
    assert "ValueError: bad input" in table.stdout
    assert 'File "tasks.py", line 3' in table.stdout  # the traceback itself
    record = json.loads(as_json.stdout)
    assert record["id"] == job_id
    assert record["state"] == "failed"
    assert record["error"]["type"] == "ValueError"
    assert record["labels"] == {"team": "red"}


async def test_a_corrupt_row_is_left_out_of_the_list_and_show_names_it(store: Store) -> None:
    ids = await store.insert(_job(), _job(), _job())
    with sqlite3.connect(store.url.removeprefix("sqlite:///")) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE workhorse_jobs SET state = 'weird' WHERE id = ?", (ids[1],))
    conn.close()

    listed = store.cli("jobs", "list", "--json")
    shown = store.cli("jobs", "show", str(ids[1]))

    assert listed.code == 0, listed.stderr
    assert [job["id"] for job in json.loads(listed.stdout)] == [ids[2], ids[0]]
    assert f"job {ids[1]} is corrupt" in listed.stderr, "the listing says what it left out"
    assert shown.code == 2
    line = shown.error_line()
    assert f"job {ids[1]} is corrupt: column 'state' holds 'weird'" in line


async def test_show_of_a_completed_job_prints_its_result(store: Store) -> None:
    [job_id] = await store.insert(_job())
    await store.finish(job_id, JobState.COMPLETED, result='{"answer": 42}')

    result = store.cli("jobs", "show", str(job_id))

    assert '{"answer":42}' in result.stdout
    assert "ran for" in result.stdout


async def test_cancel_a_queued_job_then_again(store: Store) -> None:
    [job_id] = await store.insert(_job())

    first = store.cli("jobs", "cancel", str(job_id))
    again = store.cli("jobs", "cancel", str(job_id))

    assert first.code == 0
    assert f"job {job_id} cancelled" in first.stdout
    assert again.code == 0
    assert "already cancelled" in again.stderr
    record = await store.backend.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.CANCELLED


async def test_cancel_a_running_job_asks_its_worker(store: Store) -> None:
    [job_id] = await store.insert(_job())
    await store.backend.job_claim(
        worker_id="w", queues=None, limit=1, lease_seconds=30, job_ids=[job_id]
    )

    result = store.cli("jobs", "cancel", str(job_id))

    assert result.code == 0
    assert "cancellation requested" in result.stdout
    record = await store.backend.job_get(job_id=job_id)
    assert record is not None
    assert record.cancel_requested


async def test_cancel_a_completed_job_is_refused(store: Store) -> None:
    [job_id] = await store.insert(_job())
    await store.finish(job_id, JobState.COMPLETED)

    result = store.cli("jobs", "cancel", str(job_id))

    assert result.code == 2
    assert "already ended completed" in result.error_line()


async def test_retry_a_failed_job_queues_it_again(store: Store) -> None:
    [job_id] = await store.insert(_job("acceptance.boom"))
    await store.finish(job_id, JobState.FAILED)

    result = store.cli("jobs", "retry", str(job_id))

    assert result.code == 0, result.stderr
    assert f"job {job_id} is queued again" in result.stdout
    record = await store.backend.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.QUEUED


async def test_retry_a_queued_job_is_refused(store: Store) -> None:
    [job_id] = await store.insert(_job())

    result = store.cli("jobs", "retry", str(job_id))

    assert result.code == 2
    assert "only failed or cancelled jobs can be retried" in result.error_line()


async def test_unknown_job_ids_are_one_line_errors(store: Store) -> None:
    for command in ("show", "cancel", "retry"):
        result = store.cli("jobs", command, "4242")

        assert result.code == 2
        assert result.error_line() == "error: job 4242 not found"


async def test_purge_deletes_only_matching_finished_jobs(store: Store) -> None:
    ids = await store.insert(_job(queue="a"), _job(queue="a"), _job(queue="b"), _job(queue="a"))
    await store.finish(ids[0], JobState.COMPLETED)
    await store.finish(ids[1], JobState.FAILED)
    await store.finish(ids[2], JobState.COMPLETED)

    unconfirmed = store.cli("jobs", "purge", "--queue", "a")
    done = store.cli("jobs", "purge", "--queue", "a", "--state", "completed", "--yes")

    assert unconfirmed.code == 2
    assert "2 finished jobs match; add --yes" in unconfirmed.error_line()
    assert done.code == 0, done.stderr
    assert "deleted 1 jobs" in done.stdout
    left = await store.backend.job_list(filter=JobFilter())
    assert sorted(job.id for job in left) == [ids[1], ids[2], ids[3]]


async def test_purge_refuses_live_states(store: Store) -> None:
    result = store.cli("jobs", "purge", "--state", "running", "--yes")

    assert result.code == 2
    assert "finished jobs only" in result.error_line()


async def test_purge_of_many_jobs_goes_in_slices(store: Store) -> None:
    """More than one slice of finished jobs, plus live ones that must stay."""
    total = 5_000
    await store.insert(*(_job() for _ in range(total)))
    claimed = await store.backend.job_claim(
        worker_id="w", queues=None, limit=total - 10, lease_seconds=60
    )
    await store.backend.job_complete_many(
        [Outcome(job_id=c.id, lease_token=c.lease_token, state=JobState.COMPLETED) for c in claimed]
    )

    result = store.cli("jobs", "purge", "--yes")

    assert result.code == 0, result.stderr
    assert f"deleted {total - 10} jobs" in result.stdout
    assert await store.backend.job_count(filter=JobFilter(states=tuple(FINAL_STATES))) == 0
    assert await store.backend.job_count(filter=JobFilter()) == 10
