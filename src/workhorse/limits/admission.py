"""Which waiting jobs one claim may start without breaking a limit: the rule every store
applies inside its claim transaction, so that no two workers can overshoot together.

A job belongs to up to three concurrency buckets (its queue, its task, its limit key)
and up to two rate buckets (its task, its limit key), each with a cap from the
worker's :class:`~workhorse.backends.base.ClaimLimits`. A store runs the claim in rounds:

1. it counts the running jobs and recent starts of the buckets (``count``);
2. it reads waiting jobs in claim order, leaving out those of full buckets
   (``exclusions``), at most ``wanted`` of them;
3. ``offer`` admits them in order while their buckets have room;
4. the store claims the admitted jobs and records their starts (``starts_of``).

A rejected job's bucket is full, and full buckets are left out of the next read, so
every round either claims jobs or fills buckets: the rounds end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from workhorse.backends.base import ClaimLimits, LimitCaps

QUEUE = "queue:"
TASK = "task:"
KEY = "key:"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A waiting job as a limited claim sees it."""

    id: int
    queue: str
    task: str
    limit_key: str | None = None


@dataclass(frozen=True, slots=True)
class Exclusions:
    """The full buckets, as the three lists a candidate query leaves out."""

    queues: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Start:
    """A start to record in a rate bucket: it counts until ``period`` seconds later."""

    bucket: str
    period: float


def limit_name(limit_key: str) -> str:
    """The limit a key belongs to: ``per-tenant`` for ``per-tenant:acme``."""
    return limit_key.partition(":")[0]


@dataclass(eq=False)
class Admission:
    """The state of one limited claim: counts per bucket, and the jobs admitted."""

    limits: ClaimLimits
    wanted: int
    running: dict[str, int] = field(default_factory=dict)
    """Running jobs per concurrency bucket."""
    started: dict[str, int] = field(default_factory=dict)
    """Starts within the window per rate bucket."""
    admitted: list[Candidate] = field(default_factory=list)
    _full: set[str] = field(default_factory=set)

    # -- buckets --------------------------------------------------------------------------

    def concurrency_buckets(self, job: Candidate) -> list[tuple[str, int]]:
        """The concurrency buckets of ``job`` with their caps."""
        found: list[tuple[str, int]] = []
        queue_cap = self.limits.queues.get(job.queue)
        if queue_cap is not None:
            found.append((QUEUE + job.queue, queue_cap))
        for bucket, caps in self._capped(job):
            if caps.concurrency is not None:
                found.append((bucket, caps.concurrency))
        return found

    def rate_buckets(self, job: Candidate) -> list[tuple[str, int, float]]:
        """The rate buckets of ``job`` with their caps and windows (seconds)."""
        return [
            (bucket, caps.rate, caps.period)
            for bucket, caps in self._capped(job)
            if caps.rate is not None
        ]

    def _capped(self, job: Candidate) -> list[tuple[str, LimitCaps]]:
        found: list[tuple[str, LimitCaps]] = []
        task_caps = self.limits.tasks.get(job.task)
        if task_caps is not None:
            found.append((TASK + job.task, task_caps))
        if job.limit_key is not None:
            key_caps = self.limits.keys.get(limit_name(job.limit_key))
            if key_caps is not None:
                found.append((KEY + job.limit_key, key_caps))
        return found

    def buckets_of(self, jobs: Iterable[Candidate]) -> set[str]:
        """Every bucket (concurrency or rate) of ``jobs``."""
        found: set[str] = set()
        for job in jobs:
            found.update(bucket for bucket, _ in self.concurrency_buckets(job))
            found.update(bucket for bucket, _, _ in self.rate_buckets(job))
        return found

    # -- counting -------------------------------------------------------------------------

    def count(self, running: Mapping[str, int], started: Mapping[str, int]) -> None:
        """Take fresh counts (buckets absent from the mappings keep theirs)."""
        self.running.update(running)
        self.started.update(started)

    def exclusions(self) -> Exclusions:
        """Buckets with no room left: their jobs need not be read."""
        full = self._full | {bucket for bucket in self._all_buckets() if self._is_full(bucket)}
        return Exclusions(
            queues=tuple(sorted(b[len(QUEUE) :] for b in full if b.startswith(QUEUE))),
            tasks=tuple(sorted(b[len(TASK) :] for b in full if b.startswith(TASK))),
            keys=tuple(sorted(b[len(KEY) :] for b in full if b.startswith(KEY))),
        )

    def _all_buckets(self) -> set[str]:
        buckets = {QUEUE + queue for queue in self.limits.queues}
        buckets.update(TASK + task for task in self.limits.tasks)
        buckets.update(self.running)
        buckets.update(self.started)
        return buckets

    def _is_full(self, bucket: str) -> bool:
        cap = self._concurrency_cap(bucket)
        if cap is not None and self.running.get(bucket, 0) >= cap:
            return True
        rate = self._rate_cap(bucket)
        return rate is not None and self.started.get(bucket, 0) >= rate

    def _caps(self, bucket: str) -> LimitCaps | None:
        if bucket.startswith(TASK):
            return self.limits.tasks.get(bucket[len(TASK) :])
        if bucket.startswith(KEY):
            return self.limits.keys.get(limit_name(bucket[len(KEY) :]))
        return None

    def _concurrency_cap(self, bucket: str) -> int | None:
        if bucket.startswith(QUEUE):
            return self.limits.queues.get(bucket[len(QUEUE) :])
        caps = self._caps(bucket)
        return None if caps is None else caps.concurrency

    def _rate_cap(self, bucket: str) -> int | None:
        caps = self._caps(bucket)
        return None if caps is None else caps.rate

    def block(self, buckets: Iterable[str]) -> None:
        """Treat ``buckets`` as full for the rest of this claim (another claim holds them)."""
        self._full.update(buckets)

    # -- admitting ------------------------------------------------------------------------

    def offer(self, jobs: Sequence[Candidate]) -> list[Candidate]:
        """Admit ``jobs`` in order while there is room; return those admitted. A job
        that does not fit marks its full buckets, so the next read leaves them out."""
        chosen: list[Candidate] = []
        for job in jobs:
            if len(self.admitted) >= self.wanted:
                break
            concurrency = self.concurrency_buckets(job)
            rates = self.rate_buckets(job)
            full = [b for b, cap in concurrency if b in self._full or self.running.get(b, 0) >= cap]
            full += [b for b, cap, _ in rates if b in self._full or self.started.get(b, 0) >= cap]
            if full:
                self._full.update(full)
                continue
            for bucket, _ in concurrency:
                self.running[bucket] = self.running.get(bucket, 0) + 1
            for bucket, _, _ in rates:
                self.started[bucket] = self.started.get(bucket, 0) + 1
            chosen.append(job)
            self.admitted.append(job)
        return chosen

    @property
    def remaining(self) -> int:
        """How many more jobs this claim may take."""
        return max(0, self.wanted - len(self.admitted))

    def starts_of(self, jobs: Iterable[Candidate]) -> list[Start]:
        """The starts to record for ``jobs`` (just admitted) in their rate buckets."""
        return [
            Start(bucket, period) for job in jobs for bucket, _, period in self.rate_buckets(job)
        ]


Fetch = Callable[[Exclusions, int], Sequence[Candidate]]
"""Reads up to ``n`` waiting jobs in claim order, leaving out the excluded buckets."""
Take = Callable[[Sequence[Candidate]], None]
"""Claims admitted jobs and records their starts."""


def run_rounds(admission: Admission, fetch: Fetch, take: Take) -> None:
    """Claim in rounds until the claim is full or nothing more fits (module doc)."""
    while admission.remaining:
        excluded, wanted = admission.exclusions(), admission.remaining
        jobs = fetch(excluded, wanted)
        chosen = admission.offer(jobs)
        if chosen:
            take(chosen)
        if _settled(admission, jobs, wanted, excluded, chosen):
            return


async def run_rounds_async(
    admission: Admission,
    fetch: Callable[[Exclusions, int], Awaitable[Sequence[Candidate]]],
    take: Callable[[Sequence[Candidate]], Awaitable[None]],
) -> None:
    """:func:`run_rounds` for stores reached with ``await``."""
    while admission.remaining:
        excluded, wanted = admission.exclusions(), admission.remaining
        jobs = await fetch(excluded, wanted)
        chosen = admission.offer(jobs)
        if chosen:
            await take(chosen)
        if _settled(admission, jobs, wanted, excluded, chosen):
            return


def _settled(
    admission: Admission,
    jobs: Sequence[Candidate],
    wanted: int,
    excluded: Exclusions,
    chosen: Sequence[Candidate],
) -> bool:
    """True when another round cannot find more: the read came up short (every waiting
    job outside the full buckets was seen), or it neither admitted nor filled anything."""
    return len(jobs) < wanted or (not chosen and admission.exclusions() == excluded)
