"""What a webhook delivery carries: the finished job's outcome, as a JSON body.

The stores snapshot the outcome and the URL into the delivery job's meta when the job
ends (SQL stores in a trigger, the memory store in Python), so the body says what
happened then, whatever happens to the job later. Meta, unlike arguments, cannot be set
through the API or the CLI. Stores keep times differently (epoch seconds,
ISO text, datetimes): :func:`body` writes them all as ISO 8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

DELIVER_TASK = "workhorse.webhook.deliver"
"""The built-in task that delivers webhooks."""
DELIVERY_ATTEMPTS = 10
"""Attempts each delivery gets (the stores' triggers set it on the delivery job)."""
WEBHOOK = "webhook"
"""The job meta entry naming the URL to notify."""
WEBHOOK_FOR = "webhook_for"
"""The delivery job's meta entry naming the job it reports on."""
WEBHOOK_URL = "webhook_url"
"""The delivery job's meta entry holding the URL to POST to (the job's webhook)."""
WEBHOOK_EVENT = "webhook_event"
"""The delivery job's meta entry holding the event: the job's outcome when it ended."""

_TIMES = ("created_at", "started_at", "finished_at")


def snapshot(
    *,
    job_id: int,
    task: str,
    queue: str,
    tenant: str | None,
    state: str,
    attempt: int,
    result: Any,
    error: Mapping[str, str] | None,
    times: Mapping[str, datetime | None],
) -> dict[str, Any]:
    """The event of a finished job, as the SQL triggers build it (for the memory store)."""
    return {
        "id": job_id,
        "task": task,
        "queue": queue,
        "tenant": tenant,
        "state": state,
        "attempt": attempt,
        "result": result if state == "completed" else None,
        "error": None if state == "completed" else error,
        **{name: _iso(times.get(name)) for name in _TIMES},
    }


def body(event: Mapping[str, Any]) -> bytes:
    """The request body of ``event``: JSON, times in ISO 8601 UTC."""
    return orjson.dumps({**event, **{name: _iso(event.get(name)) for name in _TIMES}})


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_url(url: str) -> str:
    """``url`` if it can receive webhooks (absolute http or https); ``ValueError`` if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} must be an absolute http:// or https:// URL")
    return url
