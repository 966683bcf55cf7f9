"""``GET /schedules`` and ``GET /jobs/{id}/webhooks`` through a real server, over SQLite
and PostgreSQL, scoped by tenant like the rest of the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from workhorse import Workhorse
from workhorse.backends.base import WebhookDelivery
from workhorse.web import create_api_key, create_app

from ._server import ServerThread
from .conftest import SESSION_SECRET

URL = "https://example.com/hooks"


@pytest.fixture
async def served(store_url: str, tmp_path: Path) -> AsyncIterator[tuple[Workhorse, str]]:
    app = Workhorse(store_url)
    report = app.task(name="report")(lambda kind: kind)
    app.schedule(report.call("nightly"), cron="0 3 * * *", tz="America/New_York")
    app.schedule(
        report.options(tenant="acme").call("acme"), every=timedelta(minutes=5), name="acme-report"
    )
    server = ServerThread(create_app(app, session_secret=SESSION_SECRET)).start()
    try:
        yield app, server.url
    finally:
        server.stop()
        await app.aclose()


async def client(app: Workhorse, url: str, tenant: str | None) -> httpx.AsyncClient:
    issued = await create_api_key(app, tenant=tenant, admin=tenant is None)
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {issued.token}"})


async def test_schedules_show_their_next_run_and_last_tick(
    served: tuple[Workhorse, str],
) -> None:
    app, url = served
    store = await app.backend()
    tick = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    nightly_schedule = app.schedules.get("report")
    assert nightly_schedule is not None
    job = nightly_schedule.new_job(tick)
    job_id = await store.cron_claim_tick(name="report", tick_at=tick, job=job)
    async with await client(app, url, None) as admin, await client(app, url, "acme") as acme:
        everything = (await admin.get("/schedules")).json()
        mine = (await acme.get("/schedules")).json()
    assert [s["name"] for s in everything] == ["report", "acme-report"]
    nightly = everything[0]
    assert nightly["trigger"] == "0 3 * * * America/New_York"
    assert (nightly["task"], nightly["queue"], nightly["tenant"]) == ("report", "default", None)
    assert datetime.fromisoformat(nightly["last_tick_at"]) == tick
    assert nightly["last_job_id"] == job_id
    next_run = datetime.fromisoformat(nightly["next_run_at"])
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(days=1)
    assert [s["name"] for s in mine] == ["acme-report"]
    assert mine[0]["trigger"] == "every 5m"
    assert mine[0]["last_tick_at"] is None


async def test_a_jobs_webhook_deliveries_are_listed_for_whoever_sees_the_job(
    served: tuple[Workhorse, str],
) -> None:
    app, url = served
    job = await app.enqueue("report", args=["x"], tenant="acme")
    store = await app.backend()
    for attempt, status in ((1, 502), (2, 200)):
        await store.webhook_delivery_record(
            delivery=WebhookDelivery(
                job_id=job.id,
                delivery_job_id=99,
                url=URL,
                attempt=attempt,
                status_code=status,
                error="the receiver answered HTTP 502" if status == 502 else None,
            )
        )
    async with (
        await client(app, url, "acme") as acme,
        await client(app, url, "globex") as globex,
        httpx.AsyncClient(base_url=url) as anonymous,
    ):
        seen = await acme.get(f"/jobs/{job.id}/webhooks")
        hidden = await globex.get(f"/jobs/{job.id}/webhooks")
        missing = await acme.get("/jobs/123456/webhooks")
        unauthenticated = await anonymous.get(f"/jobs/{job.id}/webhooks")
    assert seen.status_code == 200
    assert [(d["attempt"], d["status_code"], d["error"]) for d in seen.json()] == [
        (1, 502, "the receiver answered HTTP 502"),
        (2, 200, None),
    ]
    assert {d["url"] for d in seen.json()} == {URL}
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert unauthenticated.status_code == 401
