"""Delivering webhooks: the built-in task ``workhorse.webhook.deliver`` and an app's
webhook settings, secrets and delivery log (``app.webhooks``).

A delivery POSTs the job's outcome as JSON, signed with the secret of the job's tenant.
It sends what the store recorded when the job ended, to the job's own webhook URL, and
ignores its arguments (see :mod:`workhorse.webhooks.orders`).
Any answer but a 2xx (redirects included: they are not followed), a timeout or a
connection error fails the attempt, which is logged and retried with backoff. Delivery
is at least once: a receiver that answered 2xx to a delivery whose worker died before
storing the outcome gets it again, with the same ``X-Workhorse-Delivery`` id.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NoReturn

from workhorse.backends.base import WebhookDelivery
from workhorse.context import current_job
from workhorse.errors import MissingDependencyError, WorkhorseError
from workhorse.retry import Backoff, Retry
from workhorse.webhooks.event import DELIVER_TASK, DELIVERY_ATTEMPTS, body
from workhorse.webhooks.orders import RefusedDelivery, read_order
from workhorse.webhooks.signing import SIGNATURE_HEADER, new_secret, sign

if TYPE_CHECKING:
    from workhorse.app import Workhorse

DEFAULT_TIMEOUT = 10.0
"""Seconds a receiver has to answer."""
DEFAULT_RETRY = Retry(
    max_attempts=DELIVERY_ATTEMPTS,
    backoff=Backoff(base=2.0, factor=3.0, max=3600.0),
    give_up_on=(RefusedDelivery,),
)
"""2, 6, 18, 54 seconds... up to an hour apart: some two and a half hours in all."""
DELIVERY_HEADER = "X-Workhorse-Delivery"
EVENT_HEADER = "X-Workhorse-Event"


class WebhookDeliveryError(WorkhorseError):
    """A delivery attempt that the receiver did not accept (it is retried)."""


class Webhooks:
    """The webhook side of an app (``app.webhooks``): it registers the delivery task."""

    def __init__(self, app: Workhorse) -> None:
        self._app = app
        self.timeout = DEFAULT_TIMEOUT
        self.task = app.task(name=DELIVER_TASK, retry=DEFAULT_RETRY)(self._deliver)

    def configure(self, *, retry: Retry | None = None, timeout: float | None = None) -> None:
        """Change how deliveries are retried (attempts beyond ten are not granted) and
        how long a receiver has to answer."""
        if retry is not None:
            self.task.retry = _refusals_final(retry)
        if timeout is not None:
            if timeout <= 0:
                raise ValueError("the webhook timeout must be positive")
            self.timeout = timeout

    async def create_secret(self, tenant: str | None) -> str:
        """Make (or replace) the signing secret of ``tenant`` (None: jobs without a
        tenant) and return it: the one time it is shown."""
        secret = new_secret()
        store = await self._app.backend()
        await store.webhook_secret_set(tenant=tenant, secret=secret)
        return secret

    async def deliveries(self, job_id: int) -> list[WebhookDelivery]:
        """The delivery attempts of ``job_id``'s webhooks, oldest first."""
        return await (await self._app.backend()).webhook_delivery_list(job_id=job_id)

    async def _deliver(self, *_args: Any, **_kwargs: Any) -> dict[str, int]:
        """Send the recorded event of this delivery job once; log the attempt; raise if
        not accepted. Arguments are ignored: whoever enqueues chooses them."""
        ctx = current_job()
        store = await self._app.backend()
        order = await read_order(store, ctx.job_id)
        attempt = WebhookDelivery(
            job_id=order.job_id, delivery_job_id=ctx.job_id, url=order.url, attempt=ctx.attempt
        )
        secret = await store.webhook_secret_get(tenant=ctx.tenant)
        if secret is None:
            who = f"tenant {ctx.tenant!r}" if ctx.tenant else "jobs without a tenant"
            flag = f" --tenant {ctx.tenant}" if ctx.tenant else ""
            await self._failed(
                attempt,
                f"no webhook secret for {who}: create one with 'workhorse webhooks secret{flag}'",
            )
        content = body(order.event)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, content),
            DELIVERY_HEADER: str(ctx.job_id),
            EVENT_HEADER: f"job.{order.event.get('state')}",
        }
        httpx = _httpx()
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client,
                client.stream("POST", order.url, content=content, headers=headers) as response,
            ):
                status = response.status_code
        except httpx.HTTPError as exc:
            await self._failed(attempt, f"{type(exc).__name__}: {exc}")
        if not 200 <= status < 300:
            await self._failed(attempt, f"the receiver answered HTTP {status}", status)
        await store.webhook_delivery_record(delivery=_with(attempt, status_code=status))
        return {"status_code": status}

    async def _failed(
        self, attempt: WebhookDelivery, error: str, status: int | None = None
    ) -> NoReturn:
        store = await self._app.backend()
        await store.webhook_delivery_record(
            delivery=_with(attempt, status_code=status, error=error)
        )
        raise WebhookDeliveryError(f"webhook to {attempt.url}: {error}")


def _refusals_final(retry: Retry) -> Retry:
    """``retry``, never retrying a refused delivery (it would be refused again)."""
    if RefusedDelivery in retry.give_up_on:
        return retry
    return dataclasses.replace(retry, give_up_on=(*retry.give_up_on, RefusedDelivery))


def _with(
    attempt: WebhookDelivery, *, status_code: int | None, error: str | None = None
) -> WebhookDelivery:
    return WebhookDelivery(
        job_id=attempt.job_id,
        delivery_job_id=attempt.delivery_job_id,
        url=attempt.url,
        attempt=attempt.attempt,
        status_code=status_code,
        error=error,
    )


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - the dev environment has the extra
        raise MissingDependencyError("webhooks", "webhooks") from None
    return httpx
