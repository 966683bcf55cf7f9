"""``GET /jobs/{id}/webhooks``: the delivery attempts of a job's webhook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from workhorse.backends.base import WebhookDelivery
from workhorse.jobs import JobRecord
from workhorse.web.auth import Principal
from workhorse.web.guard import Reader
from workhorse.web.schemas import MAX_DB_INT, ErrorOut

if TYPE_CHECKING:
    from workhorse.app import Workhorse

VisibleJob = Callable[[int, Principal], Awaitable[JobRecord]]
"""The job if the principal may see it; a 404 ``ApiError`` otherwise."""


class WebhookDeliveryOut(BaseModel):
    """One attempt at delivering a job's webhook."""

    attempt: int
    delivery_job_id: int
    url: str
    status_code: int | None
    error: str | None
    at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> WebhookDeliveryOut:
        """The API view of a delivery attempt."""
        return cls(
            attempt=delivery.attempt,
            delivery_job_id=delivery.delivery_job_id,
            url=delivery.url,
            status_code=delivery.status_code,
            error=delivery.error,
            at=delivery.at,
        )


def install_webhook_routes(router: APIRouter, app: Workhorse, visible_job: VisibleJob) -> None:
    """Add ``GET /jobs/{job_id}/webhooks`` to ``router``."""

    @router.get(
        "/jobs/{job_id}/webhooks",
        tags=["jobs"],
        summary="Webhook deliveries of a job",
        responses={404: {"model": ErrorOut}},
    )
    async def job_webhooks(
        job_id: Annotated[int, Path(ge=1, le=MAX_DB_INT, description="The job's id.")],
        principal: Reader,
    ) -> list[WebhookDeliveryOut]:
        """Every attempt at delivering the job's webhook, oldest first: the receiver's
        status code, or why the attempt failed."""
        record = await visible_job(job_id, principal)
        return [WebhookDeliveryOut.of(d) for d in await app.webhooks.deliveries(record.id)]
