"""What a delivery job delivers: read from what the store recorded, never from the
job's arguments (anybody who may enqueue chooses those).

When a job with a webhook ends, its store enqueues a delivery job whose meta names the
job (``webhook_for``), its webhook URL and its outcome (``webhook_event``). Before
anything is sent, the job reported on must belong to the delivery's tenant and have
that URL as its webhook. A delivery job made any other way (with the library, meta and
all) is refused: nothing is POSTed, and nothing is logged under the job it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workhorse.backends.base import Backend
from workhorse.errors import WorkhorseError
from workhorse.jobs import JobRecord
from workhorse.webhooks.event import WEBHOOK, WEBHOOK_EVENT, WEBHOOK_FOR, WEBHOOK_URL


class RefusedDelivery(WorkhorseError):
    """A delivery job that the store did not make for a job of its tenant (never retried)."""


@dataclass(frozen=True, slots=True)
class DeliveryOrder:
    """A verified delivery: the job reported on, where to POST, and what."""

    job_id: int
    url: str
    event: dict[str, Any]


async def read_order(store: Backend, delivery_job_id: int) -> DeliveryOrder:
    """The order of delivery job ``delivery_job_id``; ``RefusedDelivery`` unless its store
    recorded it for a job of the same tenant with this webhook URL."""
    delivery = await store.job_get(job_id=delivery_job_id)
    if delivery is None:
        raise RefusedDelivery(f"delivery job {delivery_job_id} no longer exists: nothing sent")
    recorded = _recorded(delivery.meta)
    if recorded is None:
        raise RefusedDelivery(
            f"job {delivery.id} is not a webhook delivery made by the store "
            "(it has no recorded event): nothing sent"
        )
    job_id, url, event = recorded
    reported = await store.job_get(job_id=job_id)
    if not _matches(delivery, reported, url, event):
        raise RefusedDelivery(
            f"delivery job {delivery.id} does not match the webhook of a job of its "
            "tenant: nothing sent"
        )
    return DeliveryOrder(job_id=job_id, url=url, event=event)


def _recorded(meta: dict[str, Any]) -> tuple[int, str, dict[str, Any]] | None:
    """The job id, URL and event a store recorded in a delivery's meta, if it did."""
    job_id, url, event = (meta.get(key) for key in (WEBHOOK_FOR, WEBHOOK_URL, WEBHOOK_EVENT))
    if not (isinstance(job_id, int) and isinstance(url, str) and isinstance(event, dict)):
        return None
    return (job_id, url, event) if event.get("id") == job_id else None


def _matches(
    delivery: JobRecord, reported: JobRecord | None, url: str, event: dict[str, Any]
) -> bool:
    """The reported job is of the delivery's tenant, and its webhook is ``url``. A job
    pruned since it ended (a short result TTL) is judged by the recorded event."""
    if event.get("tenant") != delivery.tenant:
        return False
    if reported is None:
        return True
    return reported.tenant == delivery.tenant and reported.meta.get(WEBHOOK) == url
