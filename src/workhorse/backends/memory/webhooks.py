"""Webhooks in a memory store: signing secrets, the delivery log, and the enqueueing of
deliveries that the SQL stores do in a trigger."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from typing import cast

from workhorse.backends.base import NewJob, WebhookDelivery
from workhorse.backends.memory.rows import StoredJob, utc
from workhorse.backends.memory.table import JobTable
from workhorse.serialization import dumps, loads
from workhorse.webhooks.event import (
    DELIVER_TASK,
    DELIVERY_ATTEMPTS,
    WEBHOOK,
    WEBHOOK_EVENT,
    WEBHOOK_FOR,
    WEBHOOK_URL,
    snapshot,
)


class MemoryWebhooks:
    """The webhook methods of :class:`~workhorse.backends.memory.MemoryBackend`."""

    def __init__(self) -> None:
        self._webhooks_lock = threading.Lock()
        self._secrets: dict[str | None, str] = {}
        self._deliveries: list[WebhookDelivery] = []
        super().__init__()

    def _ended(self, job: StoredJob) -> None:
        """Enqueue the webhook delivery of a job that just reached a final state, if it
        has a webhook. Called with the job table's lock held, so the delivery exists as
        soon as the outcome does."""
        url = None if job.meta == "{}" else loads(job.meta).get(WEBHOOK)
        if not isinstance(url, str):
            return
        error = job.error
        event = snapshot(
            job_id=job.id,
            task=job.task,
            queue=job.queue,
            tenant=job.tenant,
            state=job.state.value,
            attempt=job.attempt,
            result=None if job.result is None else loads(job.result),
            error=None if error is None else {"type": error.type, "message": error.message},
            times={
                "created_at": job.created_at,
                "started_at": job.started_at,
                "finished_at": job.finished_at,
            },
        )
        delivery = NewJob(
            task=DELIVER_TASK,
            queue=job.queue,
            priority=job.priority,
            max_attempts=DELIVERY_ATTEMPTS,
            tenant=job.tenant,
        )
        now = job.finished_at or utc(None)
        meta = {WEBHOOK_FOR: job.id, WEBHOOK_URL: url, WEBHOOK_EVENT: event}
        cast(JobTable, self)._insert(delivery, "{}", dumps(meta), now)

    async def webhook_secret_set(
        self, *, tenant: str | None, secret: str, now: datetime | None = None
    ) -> None:
        """Store (or replace) a tenant's signing secret."""
        with self._webhooks_lock:
            self._secrets[tenant] = secret

    async def webhook_secret_get(self, *, tenant: str | None) -> str | None:
        """A tenant's signing secret, or None."""
        with self._webhooks_lock:
            return self._secrets.get(tenant)

    async def webhook_delivery_record(
        self, *, delivery: WebhookDelivery, now: datetime | None = None
    ) -> None:
        """Append a delivery attempt to the log."""
        with self._webhooks_lock:
            self._deliveries.append(replace(delivery, at=utc(now)))

    async def webhook_delivery_list(self, *, job_id: int) -> list[WebhookDelivery]:
        """The delivery attempts of a job's webhooks, oldest first."""
        with self._webhooks_lock:
            return [d for d in self._deliveries if d.job_id == job_id]

    async def webhook_delivery_prune(self, *, before: datetime) -> int:
        """Delete delivery attempts older than ``before``."""
        cutoff = utc(before)
        with self._webhooks_lock:
            kept = [d for d in self._deliveries if d.at is None or d.at >= cutoff]
            pruned = len(self._deliveries) - len(kept)
            self._deliveries = kept
        return pruned
