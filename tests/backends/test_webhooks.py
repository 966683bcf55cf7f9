"""Webhooks in the store: a job with a webhook that ends enqueues its delivery in the
same transaction, whatever ended it; secrets and the delivery log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from workhorse.backends.base import Backend, JobFilter, Lease, Outcome, WebhookDelivery
from workhorse.jobs import JobRecord, JobState
from workhorse.webhooks.event import WEBHOOK_EVENT, WEBHOOK_FOR, WEBHOOK_URL, body

from ._support import at, claim_one, completed, failed, insert_one

URL = "https://example.com/hooks/jobs"


async def deliveries(backend: Backend) -> list[JobRecord]:
    return await backend.job_list(filter=JobFilter(task="workhorse.webhook.deliver"))


def event_of(delivery: JobRecord) -> dict[str, Any]:
    """The outcome a delivery job carries, as its store recorded it."""
    event: dict[str, Any] = delivery.meta[WEBHOOK_EVENT]
    return event


async def test_a_completed_job_enqueues_its_delivery(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(
        backend, now=now, meta={"webhook": URL}, tenant="acme", queue="reports", priority=3
    )
    job = await claim_one(backend, now=now)
    outcome = completed(job, result='{"rows": [1, 2]}')
    assert await backend.job_complete_many([outcome], now=at(now, 1)) == [True]
    (delivery,) = await deliveries(backend)
    assert delivery.state is JobState.QUEUED
    assert (delivery.queue, delivery.tenant, delivery.priority) == ("reports", "acme", 3)
    assert delivery.max_attempts == 10
    assert (delivery.args, delivery.kwargs) == ([], {}), "what is delivered is in the meta"
    assert set(delivery.meta) == {WEBHOOK_FOR, WEBHOOK_URL, WEBHOOK_EVENT}
    assert (delivery.meta[WEBHOOK_FOR], delivery.meta[WEBHOOK_URL]) == (job_id, URL)
    event = event_of(delivery)
    assert {k: event[k] for k in ("id", "task", "queue", "tenant", "state", "attempt")} == {
        "id": job_id,
        "task": "tests.task",
        "queue": "reports",
        "tenant": "acme",
        "state": "completed",
        "attempt": 1,
    }
    assert event["result"] == {"rows": [1, 2]}
    assert event["error"] is None
    sent = orjson.loads(body(event))
    finished = datetime.fromisoformat(sent["finished_at"])
    assert abs(finished - at(now, 1)) < timedelta(milliseconds=5)
    assert sent["created_at"].endswith("Z")


async def test_a_failed_job_sends_its_error(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now, meta={"webhook": URL})
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([failed(job)], now=now) == [True]
    (delivery,) = await deliveries(backend)
    event = event_of(delivery)
    assert event["state"] == "failed"
    assert event["error"] == {"type": "ValueError", "message": "boom"}
    assert event["result"] is None


async def test_a_retry_sends_nothing_until_the_job_ends(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now, meta={"webhook": URL})
    job = await claim_one(backend, now=now)
    retry = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.SCHEDULED)
    assert await backend.job_complete_many([retry], now=now) == [True]
    assert await deliveries(backend) == []
    again = await claim_one(backend, now=at(now, 1))
    assert await backend.job_complete_many([completed(again)], now=at(now, 1)) == [True]
    assert [event_of(d)["attempt"] for d in await deliveries(backend)] == [2]


async def test_cancelled_jobs_are_announced_too(backend: Backend, now: datetime) -> None:
    waiting = await insert_one(backend, now=now, meta={"webhook": URL}, queue="a")
    await backend.job_cancel(job_id=waiting)
    running = await insert_one(backend, now=now, meta={"webhook": URL}, queue="b")
    job = await claim_one(backend, now=now, queues=["b"])
    await backend.job_cancel(job_id=running)  # asks; the worker then gives it back
    assert await backend.job_release([Lease(job_id=job.id, token=job.lease_token)]) == 1
    events = {event_of(d)["id"]: event_of(d)["state"] for d in await deliveries(backend)}
    assert events == {waiting: "cancelled", running: "cancelled"}


async def test_a_lease_expiring_on_the_last_attempt_is_announced(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, meta={"webhook": URL}, max_attempts=1)
    await claim_one(backend, now=now, lease_seconds=1)
    result = await backend.job_reclaim_expired(now=at(now, 5))
    assert result.failed == (job_id,)
    (delivery,) = await deliveries(backend)
    assert event_of(delivery)["error"]["type"] == "LeaseExpiredError"


async def test_jobs_without_a_webhook_enqueue_nothing(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now, meta={"other": "x"})
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([completed(job)], now=now) == [True]
    # The delivery itself has no webhook: delivering it announces nothing further.
    await insert_one(backend, now=now, meta={"webhook": URL})
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([completed(job)], now=now) == [True]
    (delivery,) = await deliveries(backend)
    running = await claim_one(backend, now=now)
    assert running.id == delivery.id
    assert await backend.job_complete_many([completed(running)], now=now) == [True]
    assert len(await deliveries(backend)) == 1


async def test_secrets_are_per_tenant_and_replaced(backend: Backend) -> None:
    assert await backend.webhook_secret_get(tenant="acme") is None
    await backend.webhook_secret_set(tenant="acme", secret="one")
    await backend.webhook_secret_set(tenant=None, secret="shared")
    await backend.webhook_secret_set(tenant="acme", secret="two")
    assert await backend.webhook_secret_get(tenant="acme") == "two"
    assert await backend.webhook_secret_get(tenant=None) == "shared"
    assert await backend.webhook_secret_get(tenant="other") is None


async def test_the_delivery_log(backend: Backend, now: datetime) -> None:
    attempts = [
        WebhookDelivery(job_id=7, delivery_job_id=8, url=URL, attempt=1, error="HTTP 500"),
        WebhookDelivery(job_id=7, delivery_job_id=8, url=URL, attempt=2, status_code=200),
        WebhookDelivery(job_id=9, delivery_job_id=10, url=URL, attempt=1, status_code=204),
    ]
    for offset, attempt in enumerate(attempts):
        await backend.webhook_delivery_record(delivery=attempt, now=at(now, offset))
    log = await backend.webhook_delivery_list(job_id=7)
    assert [(d.attempt, d.status_code, d.error) for d in log] == [
        (1, None, "HTTP 500"),
        (2, 200, None),
    ]
    assert log[0].at is not None
    assert abs(log[0].at - now) < timedelta(milliseconds=5)
    assert await backend.webhook_delivery_prune(before=at(now, 1.5)) == 2
    assert [d.job_id for d in await backend.webhook_delivery_list(job_id=9)] == [9]
    assert await backend.webhook_delivery_list(job_id=7) == []
