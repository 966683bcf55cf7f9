"""``workhorse queues``, ``migrate`` and ``worker status`` on a store without workers."""

from __future__ import annotations

import json
from pathlib import Path

from workhorse.backends.base import NewJob
from workhorse.jobs import JobState

from ._support import cli_env, workhorse
from .conftest import Store


async def test_queues_counts_jobs_per_state_and_queue(store: Store) -> None:
    ids = await store.insert(
        NewJob(task="t", queue="mail"),
        NewJob(task="t", queue="mail"),
        NewJob(task="t", queue="mail", delay=3600),
        NewJob(task="t", queue="media"),
    )
    await store.finish(ids[1], JobState.FAILED)

    table = store.cli("queues")
    as_json = store.cli("queues", "--json")

    assert table.code == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "QUEUE",
        "SCHEDULED",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "OLDEST",
    ]
    assert rows[0].split()[:7] == ["mail", "1", "1", "0", "0", "1", "0"]
    assert rows[1].split()[:7] == ["media", "0", "1", "0", "0", "0", "0"]
    assert rows[0].split()[7].endswith("s")  # how long the oldest queued job has waited
    stats = {row["queue"]: row for row in json.loads(as_json.stdout)}
    assert stats["mail"]["counts"]["failed"] == 1
    assert stats["mail"]["oldest_queued_at"] is not None


async def test_queues_of_an_empty_store(store: Store) -> None:
    result = store.cli("queues")

    assert result.code == 0
    assert "no jobs in any queue" in result.stderr


def test_migrate_creates_the_schema_once(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'new.db'}")

    first = workhorse("migrate", cwd=tmp_path, env=env)
    second = workhorse("migrate", cwd=tmp_path, env=env)

    assert first.code == 0, first.stderr
    assert first.stdout.startswith("applied 0001")
    assert second.stdout.strip() == "schema is up to date"


def test_migrate_print_writes_the_schema_without_touching_the_store(tmp_path: Path) -> None:
    db = tmp_path / "never.db"

    result = workhorse("migrate", "--print", cwd=tmp_path, env=cli_env(f"sqlite:///{db}"))

    assert result.code == 0
    assert "CREATE TABLE workhorse_jobs" in result.stdout
    assert not db.exists()


async def test_worker_status_without_workers(store: Store) -> None:
    table = store.cli("worker", "status")
    as_json = store.cli("worker", "status", "--json")

    assert table.code == 0
    assert "no workers are registered" in table.stderr
    assert json.loads(as_json.stdout) == []


async def test_worker_stop_without_workers(store: Store) -> None:
    result = store.cli("worker", "stop", "--all")

    assert result.code == 0
    assert "nothing to stop" in result.stderr


async def test_worker_stop_of_an_unknown_id(store: Store) -> None:
    result = store.cli("worker", "stop", "--id", "nobody")

    assert result.code == 2
    assert "no worker with id 'nobody'" in result.error_line()


def test_read_commands_do_not_create_a_store(tmp_path: Path) -> None:
    """A typo in a path must say so, not show an empty store it just created."""
    env = cli_env(f"sqlite:///{tmp_path / 'typo.db'}")
    for args in (["jobs", "list"], ["queues"], ["worker", "status"], ["jobs", "show", "1"]):
        result = workhorse(*args, cwd=tmp_path, env=env)

        assert result.code == 2
        assert f"no workhorse store: '{tmp_path / 'typo.db'}' does not exist" in (
            result.error_line()
        )
    assert not (tmp_path / "typo.db").exists()


def test_the_default_store_is_workhorse_db_in_the_working_directory(tmp_path: Path) -> None:
    result = workhorse("migrate", cwd=tmp_path, env=cli_env())

    assert result.code == 0, result.stderr
    assert (tmp_path / "workhorse.db").exists()
