"""Concurrency and rate limits, held across every worker process: per queue
(``app.limit_queue``), per task (``@app.task(concurrency=..., rate_limit=...)``) and per
key (``@app.task(limit=Limit("per-tenant", key="tenant", concurrency=5))``).

Workers keep them in the claim itself: a job whose queue, task or key has no room is
passed over, and later jobs are taken instead.
"""

from __future__ import annotations

from workhorse.limits.config import Limit, Rate

__all__ = ["Limit", "Rate"]
