"""Leader-only chores: reclaim expired leases, promote due scheduled jobs, prune old jobs
and dead workers. Any worker may run them; the store elects one at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from workhorse.backends.base import Backend, ReclaimResult
from workhorse.worker.store_health import StoreHealth

logger = logging.getLogger("workhorse.worker")

_LOOP = "maintenance"


class Chore(Protocol):
    """One maintenance job, run by the leader every ``interval`` seconds. A chore that
    returns True is behind (it stopped at its time budget with work left) and runs again
    at the next election instead of a whole interval later."""

    @property
    def interval(self) -> float: ...

    async def __call__(self, store: Backend) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class ReclaimExpired:
    """Requeue (or fail, with no attempts left, or cancel, when asked to) jobs whose worker
    stopped renewing, and hand what was reclaimed to ``on_reclaimed`` (to count the lost
    attempts' ends, wake the claim loop and whoever waits for a result)."""

    interval: float
    result_ttl: float | None
    on_reclaimed: Callable[[ReclaimResult], None]

    async def __call__(self, store: Backend) -> None:
        result = await store.job_reclaim_expired(ttl=self.result_ttl)
        if not result.jobs:
            return
        for ids, what in (
            (result.requeued, "reclaimed %d job(s) whose lease expired: %s"),
            (result.failed, "failed %d job(s) whose lease expired on their last attempt: %s"),
            (result.cancelled, "cancelled %d job(s) whose lease expired after a cancel: %s"),
        ):
            if ids:
                logger.warning(what, len(ids), _ids(ids))
        self.on_reclaimed(result)


@dataclass(frozen=True, slots=True)
class PromoteScheduled:
    """Mark due scheduled jobs queued, so that listings show them as ready."""

    interval: float

    async def __call__(self, store: Backend) -> None:
        await store.job_promote_scheduled()


PRUNE_BATCH = 1000
"""Jobs deleted per statement. One batch holds SQLite's write lock for about 2 ms and
takes some 5-10 ms on PostgreSQL (however large the backlog), so writers of other workers
wait at most that long."""
PRUNE_BUDGET = 0.5
"""Seconds one round may spend deleting: the leader's other chores (reclaiming expired
leases first) are delayed by no more than this."""


@dataclass(frozen=True, slots=True)
class Prune:
    """Delete finished jobs past their TTL, and workers silent for ``worker_silence``.

    Jobs go in batches of ``batch``, one short transaction each, for as long as full
    batches come back and ``budget`` seconds are not spent (the first batch always runs).
    A round that runs out of budget reports itself behind, so the next one comes at the
    next election: pruning keeps pace with workers that finish thousands of jobs a
    second. Nothing is lost on a crash between batches: each batch is committed, and the
    next leader finds whatever is left."""

    interval: float
    worker_silence: float
    batch: int = PRUNE_BATCH
    budget: float = PRUNE_BUDGET

    async def __call__(self, store: Backend) -> bool:
        deadline = time.monotonic() + self.budget
        jobs = 0
        while True:
            deleted = await store.job_prune(limit=self.batch)
            jobs += deleted
            behind = deleted >= self.batch
            if not behind or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0)  # let the worker's own services run between batches
        workers = await store.worker_prune(older_than=self.worker_silence)
        if jobs or workers:
            logger.info(
                "pruned %d finished job(s)%s and %d dead worker(s)",
                jobs,
                " (more left: going on at the next round)" if behind else "",
                workers,
            )
        return behind


@dataclass(eq=False)
class Maintenance:
    """Tries to be the leader every ``elect_every`` seconds; while leading, runs each
    chore once its interval has passed."""

    store: Backend
    health: StoreHealth
    worker_id: str
    elect_every: float
    leader_ttl: float
    chores: Sequence[Chore]
    is_leader: bool = False
    _next_run: dict[int, float] = field(default_factory=dict)

    async def run(self) -> None:
        """Elect and run chores until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self.elect_every)

    async def tick(self) -> None:
        """One election and the chores that are due."""
        try:
            leader = await self.store.leader_attempt_elect(
                worker_id=self.worker_id, ttl=self.leader_ttl
            )
        except Exception as exc:
            self.health.failed(_LOOP, "the maintenance leader election", exc)
            return
        self.health.ok(_LOOP)
        if leader != self.is_leader:
            logger.info(
                "worker %s %s the maintenance leader",
                self.worker_id,
                "is now" if leader else "is no longer",
            )
            self.is_leader = leader
        if not leader:
            return
        now = time.monotonic()
        for index, chore in enumerate(self.chores):
            if self._next_run.get(index, 0.0) > now:
                continue
            self._next_run[index] = now + chore.interval
            try:
                if await chore(self.store):
                    self._next_run[index] = now  # behind: again at the next election
            except Exception as exc:
                self.health.failed(_LOOP, f"maintenance chore {type(chore).__name__}", exc)

    async def resign(self) -> None:
        """Give up leadership (on stop), so another worker takes over at once."""
        self.is_leader = False
        try:
            await self.store.leader_resign(worker_id=self.worker_id)
        except Exception as exc:
            logger.warning("worker %s: could not resign leadership: %s", self.worker_id, exc)


def _ids(ids: Sequence[int], shown: int = 20) -> str:
    text = ", ".join(str(i) for i in ids[:shown])
    return text + (f" (+{len(ids) - shown} more)" if len(ids) > shown else "")
