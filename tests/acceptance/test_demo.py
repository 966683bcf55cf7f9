"""``workhorse demo`` runs to its end on a fresh file and explains what happened."""

from __future__ import annotations

import time
from pathlib import Path

from cli._support import cli_env, workhorse
from workhorse.backends import open_backend
from workhorse.backends.base import JobFilter
from workhorse.jobs import JobState

TASKS = (
    "demo.build_report",
    "demo.call_flaky_api",
    "demo.fetch_page",
    "demo.import_invoice",
    "demo.resize_image",
)


async def test_the_demo_runs_to_the_end_and_leaves_its_store(tmp_path: Path) -> None:
    started = time.monotonic()
    result = workhorse("demo", "--jobs", "120", "--db", "demo.db", cwd=tmp_path, env=cli_env())
    took = time.monotonic() - started

    assert result.code == 0, result.stdout + result.stderr
    assert took < 45
    for task in TASKS:
        assert task in result.stdout
    for words in ("120 jobs in", "retries", "cancelled while running", "workhorse jobs list"):
        assert words in result.stdout
    store = open_backend(f"sqlite:///{tmp_path / 'demo.db'}")
    await store.connect()
    try:
        count = store.job_count
        assert await count(filter=JobFilter()) == 120
        assert await count(filter=JobFilter(states=(JobState.CANCELLED,))) == 1
        assert await count(filter=JobFilter(states=(JobState.FAILED,))) == 120 // 30
        flaky = await store.job_list(filter=JobFilter(task="demo.call_flaky_api"), limit=100)
        assert flaky
        assert all(job.state is JobState.COMPLETED and job.attempt == 3 for job in flaky)
    finally:
        await store.close()


def test_the_demo_replaces_its_own_file_only(tmp_path: Path) -> None:
    precious = tmp_path / "precious.db"
    precious.write_text("my data")

    result = workhorse("demo", "--db", str(precious), cwd=tmp_path, env=cli_env())

    assert result.code == 2
    assert "refusing to replace" in result.error_line()
    assert precious.read_text() == "my data"


async def test_each_run_starts_from_a_fresh_default_file(tmp_path: Path) -> None:
    for _ in range(2):
        result = workhorse("demo", "--jobs", "10", cwd=tmp_path, env=cli_env())
        assert result.code == 0, result.stdout + result.stderr

    store = open_backend(f"sqlite:///{tmp_path / 'workhorse-demo.db'}")
    await store.connect()
    try:
        assert await store.job_count(filter=JobFilter()) == 10
    finally:
        await store.close()
