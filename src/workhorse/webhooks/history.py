"""Pruning the webhook delivery log: a leader-only maintenance chore."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workhorse.backends.base import Backend

logger = logging.getLogger("workhorse.webhooks")


@dataclass(frozen=True, slots=True)
class PruneDeliveries:
    """Delete delivery attempts older than ``keep`` seconds (as long as finished jobs
    are kept), every ``interval`` seconds."""

    interval: float
    keep: float

    async def __call__(self, store: Backend) -> None:
        before = datetime.now(UTC) - timedelta(seconds=self.keep)
        pruned = await store.webhook_delivery_prune(before=before)
        if pruned:
            logger.info("pruned %d webhook delivery attempt(s) older than %s", pruned, before)


def webhook_chores(interval: float, keep: float | None) -> list[PruneDeliveries]:
    """The pruning chore, unless finished jobs are kept forever (``keep`` None)."""
    return [] if keep is None else [PruneDeliveries(interval=interval, keep=keep)]
