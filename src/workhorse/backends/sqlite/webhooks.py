"""Webhook secrets and the delivery log in the SQLite backend. (Deliveries themselves
are enqueued by the ``workhorse_jobs_webhook`` trigger of migration 0004.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workhorse.backends.base import WebhookDelivery
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.rows import clock, to_epoch
from workhorse.backends.sqlite.statements import QUERIES

NO_TENANT = ""
"""How the secret of jobs without a tenant is keyed."""


class SQLiteWebhooks:
    """The webhook methods of :class:`~workhorse.backends.sqlite.SQLiteBackend`."""

    _db: Database

    async def webhook_secret_set(
        self, *, tenant: str | None, secret: str, now: datetime | None = None
    ) -> None:
        """Store (or replace) a tenant's signing secret."""
        params = {"tenant": tenant or NO_TENANT, "secret": secret, "now": clock(now)}
        await self._db.write(lambda conn: conn.execute(QUERIES["webhook_secret_set"], params))

    async def webhook_secret_get(self, *, tenant: str | None) -> str | None:
        """A tenant's signing secret, or None."""
        params = {"tenant": tenant or NO_TENANT}
        row = await self._db.read(
            lambda conn: conn.execute(QUERIES["webhook_secret_get"], params).fetchone()
        )
        return None if row is None else str(row[0])

    async def webhook_delivery_record(
        self, *, delivery: WebhookDelivery, now: datetime | None = None
    ) -> None:
        """Append a delivery attempt to the log."""
        params = {
            "job_id": delivery.job_id,
            "delivery_job_id": delivery.delivery_job_id,
            "url": delivery.url,
            "attempt": delivery.attempt,
            "status_code": delivery.status_code,
            "error": delivery.error,
            "now": clock(now),
        }
        await self._db.write(lambda conn: conn.execute(QUERIES["webhook_delivery_insert"], params))

    async def webhook_delivery_list(self, *, job_id: int) -> list[WebhookDelivery]:
        """The delivery attempts of a job's webhooks, oldest first."""
        rows = await self._db.read(
            lambda conn: conn.execute(
                QUERIES["webhook_delivery_list"], {"job_id": job_id}
            ).fetchall()
        )
        return [_delivery(row) for row in rows]

    async def webhook_delivery_prune(self, *, before: datetime) -> int:
        """Delete delivery attempts older than ``before``."""
        params = {"before": to_epoch(before)}
        return await self._db.write(
            lambda conn: conn.execute(QUERIES["webhook_delivery_prune"], params).rowcount
        )


def _delivery(row: tuple[Any, ...]) -> WebhookDelivery:
    return WebhookDelivery(
        job_id=row[0],
        delivery_job_id=row[1],
        url=row[2],
        attempt=row[3],
        status_code=row[4],
        error=row[5],
        at=datetime.fromtimestamp(row[6], UTC),
    )
