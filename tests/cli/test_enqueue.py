"""``workhorse enqueue``: the job is stored as asked, its id printed alone on stdout."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workhorse.backends.base import JobFilter
from workhorse.jobs import JobState
from workhorse.webhooks.event import DELIVER_TASK

from ._support import APP, workhorse
from .conftest import Store


async def test_enqueue_stores_the_job_and_prints_its_id(store: Store) -> None:
    result = store.cli(
        "enqueue",
        "acceptance.add",
        "--args",
        "[1]",
        "--kwargs",
        '{"b": 2}',
        "--queue",
        "math",
        "--priority",
        "7",
        "--delay",
        "60",
        "--tenant",
        "acme",
        "-A",
        APP,
    )

    assert result.code == 0, result.stderr
    job_id = int(result.stdout.strip())
    record = await store.backend.job_get(job_id=job_id)
    assert record is not None
    assert (record.task, record.args, record.kwargs) == ("acceptance.add", [1], {"b": 2})
    assert (record.queue, record.priority, record.tenant) == ("math", 7, "acme")
    assert record.state is JobState.SCHEDULED
    assert record.run_at - record.created_at >= timedelta(seconds=59)


async def test_max_attempts_comes_from_the_flag_else_the_environment(store: Store) -> None:
    env = {**store.env, "WORKHORSE_MAX_ATTEMPTS": "7"}
    command = ("enqueue", "acceptance.flaky", "-A", APP)

    from_env = workhorse(*command, cwd=store.cwd, env=env)
    from_flag = workhorse(*command, "--max-attempts", "2", cwd=store.cwd, env=env)
    bad_env = workhorse(*command, cwd=store.cwd, env={**env, "WORKHORSE_MAX_ATTEMPTS": "0"})

    assert from_env.code == from_flag.code == 0, from_env.stderr + from_flag.stderr
    records = [await store.backend.job_get(job_id=int(r.stdout)) for r in (from_env, from_flag)]
    assert [r.max_attempts if r else None for r in records] == [7, 2]
    assert bad_env.code == 2
    assert "WORKHORSE_MAX_ATTEMPTS='0'" in bad_env.error_line()


async def test_a_live_unique_key_returns_the_existing_job(store: Store) -> None:
    args = ("enqueue", "acceptance.add", "--args", "[1, 2]", "--unique-key", "k", "-A", APP)

    first, second = store.cli(*args), store.cli(*args)

    assert first.code == second.code == 0
    assert first.stdout == second.stdout
    assert "no new job was made" in second.stderr
    assert await store.backend.job_count(filter=JobFilter()) == 1


async def test_the_url_option_overrides_the_apps_store(store: Store) -> None:
    other = store.cwd / "other.db"

    result = store.cli(
        "enqueue", "acceptance.add", "--args", "[1, 2]", "-A", APP, "--url", f"sqlite:///{other}"
    )

    assert result.code == 0, result.stderr
    assert other.exists()
    assert await store.backend.job_count(filter=JobFilter()) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--args", "[1,"], "--args is not valid JSON"),
        (["--args", '{"a": 1}'], "--args must be a JSON array, got an object"),
        (["--kwargs", "[1]"], "--kwargs must be a JSON object, got an array"),
        (["--kwargs", "nope"], "--kwargs is not valid JSON"),
    ],
)
async def test_malformed_arguments_are_refused(store: Store, args: list[str], message: str) -> None:
    result = store.cli("enqueue", "acceptance.add", *args, "-A", APP)

    assert result.code == 2
    assert message in result.error_line()
    assert await store.backend.job_count(filter=JobFilter()) == 0


async def test_an_unknown_task_is_refused_with_the_known_ones(store: Store) -> None:
    result = store.cli("enqueue", "acceptance.nope", "-A", APP)

    assert result.code == 2
    line = result.error_line()
    assert "no task named 'acceptance.nope'" in line
    assert "acceptance.add" in line
    assert await store.backend.job_count(filter=JobFilter()) == 0


async def test_workhorses_own_tasks_cannot_be_enqueued(store: Store) -> None:
    """The webhook delivery task takes what the store recorded, never a caller's URL
    and event: the CLI refuses it like an unknown task, and lists it nowhere."""
    forged = '["http://127.0.0.1:9/internal", {"id": 1, "state": "completed"}]'
    result = store.cli("enqueue", DELIVER_TASK, "--args", forged, "-A", APP)

    assert result.code == 2
    line = result.error_line()
    assert line.startswith(f"error: no task named {DELIVER_TASK!r}")
    assert "acceptance.add" in line
    assert line.count("workhorse.") == 1
    assert await store.backend.job_count(filter=JobFilter()) == 0


async def test_arguments_that_do_not_fit_the_task_still_enqueue(store: Store) -> None:
    """The CLI checks JSON and the task name; the call itself is the worker's to judge
    (like any enqueue by name), so nothing is silently dropped here."""
    result = store.cli("enqueue", "acceptance.add", "--args", '["a", "b", "c"]', "-A", APP)

    assert result.code == 0, result.stderr
    assert await store.backend.job_count(filter=JobFilter()) == 1


def test_enqueue_without_an_app_says_it_needs_one(store: Store) -> None:
    result = store.cli("enqueue", "acceptance.add")

    assert result.code == 2
    assert "enqueue needs your app" in result.error_line()
