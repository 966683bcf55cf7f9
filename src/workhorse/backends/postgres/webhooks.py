"""Webhook secrets and the delivery log in the PostgreSQL backend. (Deliveries themselves
are enqueued by the ``workhorse_jobs_webhook`` trigger of migration 0004.)"""

from __future__ import annotations

from datetime import datetime

from workhorse.backends.base import WebhookDelivery
from workhorse.backends.postgres.pool import Pool
from workhorse.backends.postgres.statements import Statements

NO_TENANT = ""
"""How the secret of jobs without a tenant is keyed."""


class PostgresWebhooks:
    """The webhook methods of :class:`~workhorse.backends.postgres.PostgresBackend`."""

    _pool: Pool
    _sql: Statements

    async def webhook_secret_set(
        self, *, tenant: str | None, secret: str, now: datetime | None = None
    ) -> None:
        """Store (or replace) a tenant's signing secret."""
        await self._pool.fetch(
            self._sql["webhook_secret_set"],
            {"tenant": tenant or NO_TENANT, "secret": secret, "now": now},
            idempotent=True,
        )

    async def webhook_secret_get(self, *, tenant: str | None) -> str | None:
        """A tenant's signing secret, or None."""
        rows = await self._pool.fetch(
            self._sql["webhook_secret_get"], {"tenant": tenant or NO_TENANT}, idempotent=True
        )
        return str(rows[0]["secret"]) if rows else None

    async def webhook_delivery_record(
        self, *, delivery: WebhookDelivery, now: datetime | None = None
    ) -> None:
        """Append a delivery attempt to the log."""
        await self._pool.fetch(
            self._sql["webhook_delivery_insert"],
            {
                "job_id": delivery.job_id,
                "delivery_job_id": delivery.delivery_job_id,
                "url": delivery.url,
                "attempt": delivery.attempt,
                "status_code": delivery.status_code,
                "error": delivery.error,
                "now": now,
            },
        )

    async def webhook_delivery_list(self, *, job_id: int) -> list[WebhookDelivery]:
        """The delivery attempts of a job's webhooks, oldest first."""
        rows = await self._pool.fetch(
            self._sql["webhook_delivery_list"], {"job_id": job_id}, idempotent=True
        )
        return [WebhookDelivery(**row) for row in rows]

    async def webhook_delivery_prune(self, *, before: datetime) -> int:
        """Delete delivery attempts older than ``before``."""
        rows = await self._pool.fetch(self._sql["webhook_delivery_prune"], {"before": before})
        return int(rows[0]["pruned"])
