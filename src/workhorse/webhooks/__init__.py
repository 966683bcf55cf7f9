"""Webhooks: a job or task may name a URL to notify when the job ends. Deliveries are
durable jobs of the built-in task ``workhorse.webhook.deliver``, signed with the tenant's
secret and retried with backoff; every attempt is logged.

Receivers check the ``X-Workhorse-Signature`` header with :func:`verify_signature`.
"""

from __future__ import annotations

from workhorse.webhooks.signing import SIGNATURE_HEADER, sign, verify_signature

__all__ = ["SIGNATURE_HEADER", "sign", "verify_signature"]
