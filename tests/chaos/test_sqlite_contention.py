"""One SQLite file under four worker processes and the HTTP API (``workhorse serve``), all
writing at once: API clients enqueue 600 jobs through ``POST /jobs`` while others list,
fetch and count jobs, and the workers claim and complete them.

Bounds: no lock error surfaces anywhere (the word "locked" in no response, nor in the
server's or a worker's output); every request succeeds (201 for an enqueue, 200 for a read);
every job ends completed with exactly one effect (no fault, so no duplicate); no job
stays ``running`` more than one sweep (``OVERDUE_BOUND``) past its lease expiry.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import httpx

from web._server import ServerProcess
from workhorse import Workhorse
from workhorse.jobs import JobState
from workhorse.web import create_api_key

from ._site import CHAOS_APP, LOCKED, ChaosSite
from .conftest import SiteFactory

WORKERS = 4
CONCURRENCY = 4
ENQUEUERS = 6
PER_ENQUEUER = 100
READERS = 3


async def test_four_workers_and_the_api_share_one_sqlite_file(make_site: SiteFactory) -> None:
    site = await make_site("sqlite")
    token = await _api_key(site.url)
    server = ServerProcess(
        [sys.executable, "-m", "workhorse", "serve", CHAOS_APP],
        cwd=site.tmp,
        env=site.env,
        log=site.tmp / "server.log",
    )
    try:
        site.fleet.start(WORKERS, concurrency=CONCURRENCY)
        server.start()
        statuses: Counter[int] = Counter()
        bodies: list[str] = []
        async with (
            site.monitor.watching(),
            httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as client,
        ):
            ids: list[int] = []
            enqueuing = [
                asyncio.create_task(_enqueue(client, site, ids, statuses, bodies))
                for _ in range(ENQUEUERS)
            ]
            done = asyncio.gather(*enqueuing)
            readers = [
                asyncio.create_task(_read(client, site, ids, done, statuses, bodies))
                for _ in range(READERS)
            ]
            await asyncio.gather(done, *readers)
            await site.wait_final(len(ids))
        site.report(f"{len(ids)} jobs through the API, {sum(statuses.values())} requests")

        assert len(ids) == ENQUEUERS * PER_ENQUEUER
        assert set(statuses) <= {200, 201}, statuses
        assert statuses[201] == len(ids)
        assert not [body for body in bodies if LOCKED.search(body)]
        await site.assert_bounds(ids)
        assert site.ledger.duplicates() == 0
        assert site.fleet.retired == [], "no worker died"
        assert site.fleet.stop_all() == [0] * WORKERS
    finally:
        server.kill()
    output = site.fleet.output() + server.log()
    assert not LOCKED.search(output), "no lock error may surface in a log"


async def _api_key(url: str) -> str:
    app = Workhorse(url)
    try:
        return (await create_api_key(app, tenant="chaos")).token
    finally:
        await app.aclose()


async def _enqueue(
    client: httpx.AsyncClient,
    site: ChaosSite,
    ids: list[int],
    statuses: Counter[int],
    bodies: list[str],
) -> None:
    for _ in range(PER_ENQUEUER):
        body = {"task": "chaos.effect", "args": [round(site.rng.uniform(1, 10), 1)]}
        response = await client.post("/jobs", json=body)
        statuses[response.status_code] += 1
        bodies.append(response.text)
        if response.status_code == 201:
            ids.append(response.json()["id"])


async def _read(
    client: httpx.AsyncClient,
    site: ChaosSite,
    ids: list[int],
    enqueuing: asyncio.Future[list[None]],
    statuses: Counter[int],
    bodies: list[str],
) -> None:
    """List, fetch and count jobs until the enqueuers are done."""
    while not enqueuing.done():
        state = site.rng.choice([*JobState])
        requests = [
            client.get("/jobs", params={"status": state.value, "limit": 50}),
            client.get("/queues"),
        ]
        if ids:
            requests.append(client.get(f"/jobs/{site.rng.choice(ids)}"))
        for response in await asyncio.gather(*requests):
            statuses[response.status_code] += 1
            bodies.append(response.text)
