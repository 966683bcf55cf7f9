"""Fixtures of the chaos suite: seeded randomness (the seed is printed, and shown again
in the report of a failing test with every worker's log; ``WORKHORSE_CHAOS_SEED=<seed>``
replays it) and chaos sites on a SQLite file or a PostgreSQL schema."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path

import pytest

from conftest import backend_url
from workhorse.backends import open_backend

from ._site import TIMEOUT, ChaosSite

SEED_ENV = "WORKHORSE_CHAOS_SEED"
_SEED = pytest.StashKey[int]()
_SITES = pytest.StashKey[list[ChaosSite]]()

SiteFactory = Callable[..., Awaitable[ChaosSite]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/chaos carries the ``chaos`` marker, and ``slow`` (so that
    ``make unit`` leaves them out; ``make test`` and CI run them), and a pytest-timeout
    above its own budget: a stuck chaos test fails on its own deadline, with its seed
    and logs, rather than being cut short by the suite's default timeout."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(TIMEOUT))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    seed = item.stash.get(_SEED, None)
    if seed is not None and report.failed:
        report.sections.append(("chaos seed", f"replay with {SEED_ENV}={seed}"))
        for site in item.stash.get(_SITES, []):
            report.sections.append((f"chaos worker logs ({site.kind})", site.fleet.logs()))
    return report


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """This test's random seed: ``$WORKHORSE_CHAOS_SEED`` or a fresh one."""
    chosen = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(10**6))
    request.node.stash[_SEED] = chosen
    print(f"\nchaos seed {chosen} (replay: {SEED_ENV}={chosen})")
    return chosen


@pytest.fixture
async def make_site(
    tmp_path: Path, seed: int, request: pytest.FixtureRequest
) -> AsyncIterator[SiteFactory]:
    """Build a chaos site on ``kind`` ("sqlite" or "postgres"); ``worker_query`` is
    appended to the URL the workers get. Every process a site started is killed at the
    end and its store closed."""
    sites: list[ChaosSite] = []
    request.node.stash[_SITES] = sites

    async def make(kind: str, *, worker_query: str = "") -> ChaosSite:
        schema = request.getfixturevalue("pg_schema") if kind == "postgres" else None
        url = backend_url(kind, tmp_path, schema)
        store = open_backend(url)
        await store.connect()
        await store.migrate()
        site = ChaosSite(
            kind, url, tmp_path, store, random.Random(seed), seed, worker_url=url + worker_query
        )
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.fleet.kill_all()
        await site.store.close()
