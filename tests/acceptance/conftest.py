"""A site for end-to-end tests: a real store (a SQLite file in tmp_path, or a PostgreSQL
schema), an effects file, and ``workhorse worker start`` subprocesses on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli._support import APP, Result, WorkerProcess, cli_env, workhorse
from conftest import backend_url
from workhorse.backends import Backend, open_backend
from workhorse.backends.base import JobFilter, NewJob
from workhorse.jobs import JobRecord, JobState

from .apps import EFFECTS_ENV, STARTS_ENV, read_effects

FAST = (
    "--lease",
    "2",
    "--heartbeat-interval",
    "0.5",
    "--reclaim-interval",
    "0.5",
    "--leader-ttl",
    "2",
    "--poll-interval",
    "0.2",
)
"""Worker flags that make crash recovery take seconds, not the default tens of seconds."""


@dataclass
class Site:
    """One store, its effects file and the worker processes started on it."""

    url: str
    tmp: Path
    store: Backend
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def effects_file(self) -> Path:
        """Where the test app's tasks record their effects."""
        return self.tmp / "effects.log"

    @property
    def starts_file(self) -> Path:
        """Where the test app's slow task records that its attempt began."""
        return self.tmp / "starts.log"

    @property
    def env(self) -> dict[str, str]:
        """The environment of CLI and worker subprocesses on this site."""
        return cli_env(
            self.url, **{EFFECTS_ENV: str(self.effects_file), STARTS_ENV: str(self.starts_file)}
        )

    def start_worker(self, *flags: str) -> WorkerProcess:
        """``workhorse worker start tests.acceptance.apps:app FLAGS`` in the background."""
        log = self.tmp / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(APP, *flags, cwd=self.tmp, env=self.env, log=log)
        self.workers.append(worker)
        return worker

    def cli(self, *args: str) -> Result:
        """Run a one-shot CLI command on this site."""
        return workhorse(*args, cwd=self.tmp, env=self.env)

    def effects(self) -> dict[int, int]:
        """Effects recorded so far, per job id."""
        return read_effects(self.effects_file)

    def started(self) -> dict[int, int]:
        """Attempts of the slow task begun so far, per job id."""
        return read_effects(self.starts_file)

    async def insert(self, jobs: list[NewJob]) -> list[int]:
        """Enqueue rows directly (the test's side of the store); their ids."""
        return [row.id for row in await self.store.job_insert_many(jobs)]

    async def count(self, *states: JobState) -> int:
        """Jobs in any of ``states``."""
        return await self.store.job_count(filter=JobFilter(states=states))

    async def jobs(self, *states: JobState, limit: int = 10_000) -> list[JobRecord]:
        """Jobs in any of ``states`` (every job when none given)."""
        return await self.store.job_list(filter=JobFilter(states=states or None), limit=limit)

    async def registered(self) -> dict[int, str]:
        """Worker ids registered in the store, by pid."""
        return {w.pid: w.id for w in await self.store.worker_list()}

    def logs(self) -> str:
        """Every worker's output, for failure messages."""
        return "\n".join(f"--- {w.log.name}\n{w.output()[-3000:]}" for w in self.workers)


SiteFactory = Callable[[str], Awaitable[Site]]


@pytest.fixture
async def make_site(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SiteFactory]:
    """Build a site on a store of ``kind`` ("sqlite" or "postgres"); workers still running
    at the end are killed, stores closed."""
    sites: list[Site] = []

    async def make(kind: str) -> Site:
        schema = request.getfixturevalue("pg_schema") if kind == "postgres" else None
        url = backend_url(kind, tmp_path, schema)
        store = open_backend(url)
        await store.connect()
        await store.migrate()
        site = Site(url, tmp_path, store)
        sites.append(site)
        return site

    yield make
    for site in sites:
        for worker in site.workers:
            worker.kill()
        await site.store.close()


@pytest.fixture
async def site(make_site: SiteFactory) -> Site:
    """A site on a SQLite file."""
    return await make_site("sqlite")
