"""The maintenance chore that keeps the job statistics small: per-minute counts older
than the longest throughput window are deleted (the all-time totals keep them)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workhorse.backends.base import Backend

logger = logging.getLogger("workhorse.stats")

MINUTES_KEPT = timedelta(hours=25)
"""How long per-minute counts are kept: a day of throughput, and an hour to spare."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PruneStats:
    """Delete per-minute counts older than ``keep`` (a leader-only chore)."""

    interval: float
    keep: timedelta = MINUTES_KEPT
    clock: Callable[[], datetime] = _utcnow

    async def __call__(self, store: Backend) -> None:
        pruned = await store.stats_prune(before=self.clock() - self.keep)
        if pruned:
            logger.info("pruned %d per-minute job count(s) older than %s", pruned, self.keep)
