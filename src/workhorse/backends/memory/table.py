"""The parts of the memory store's job table that its feature mixins (schedules, limits,
webhooks) build on: the mixins are typed against this, and cast ``self`` to it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from workhorse.backends.base import ClaimedJob, InsertedJob, NewJob
from workhorse.backends.memory.rows import StoredJob


class JobTable(Protocol):
    """What :class:`~workhorse.backends.memory.MemoryBackend` keeps its jobs in."""

    _lock: threading.Lock
    _jobs: dict[int, StoredJob]

    def _insert(self, new: NewJob, labels: str, meta: str, now: datetime) -> InsertedJob: ...

    @staticmethod
    def _claim(
        job: StoredJob, worker_id: str, lease_seconds: float, now: datetime
    ) -> ClaimedJob: ...

    async def job_insert_many(
        self, jobs: Sequence[NewJob], *, connection: Any = None, now: datetime | None = None
    ) -> list[InsertedJob]: ...
