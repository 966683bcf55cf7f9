"""Everything a memory store keeps besides jobs: the worker registry and the leader
lease. It shares no state with the jobs, so it has a lock of its own."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta

from workhorse.backends.base import WorkerInfo, WorkerRecord
from workhorse.backends.memory.rows import StoredWorker, utc
from workhorse.serialization import dumps


class MemoryRegistry:
    """The worker and leader methods of :class:`MemoryBackend`."""

    def __init__(self) -> None:
        self._registry_lock = threading.Lock()
        self._leader: tuple[str, datetime] | None = None
        self._workers: dict[str, StoredWorker] = {}
        self._worker_seq = itertools.count()
        super().__init__()  # the next table of MemoryBackend

    async def leader_attempt_elect(
        self, *, worker_id: str, ttl: float, now: datetime | None = None
    ) -> bool:
        """Take or extend the leadership unless another worker holds it."""
        moment = utc(now)
        with self._registry_lock:
            if self._leader is not None:
                holder, until = self._leader
                if holder != worker_id and until > moment:
                    return False
            self._leader = (worker_id, moment + timedelta(seconds=ttl))
            return True

    async def leader_resign(self, *, worker_id: str) -> None:
        """Free the leadership if ``worker_id`` holds it."""
        with self._registry_lock:
            if self._leader is not None and self._leader[0] == worker_id:
                self._leader = None

    # -- workers ---------------------------------------------------------------------

    async def worker_register(self, *, worker: WorkerInfo) -> None:
        """Insert or replace the worker's row."""
        meta = dumps(worker.meta, what="worker meta")
        moment = utc(None)
        with self._registry_lock:
            self._workers[worker.id] = StoredWorker(
                info=worker,
                meta=meta,
                seq=next(self._worker_seq),
                started_at=moment,
                heartbeat_at=moment,
            )

    async def worker_heartbeat(self, *, worker_id: str, running: int) -> bool:
        """Record liveness; True if a stop was requested."""
        with self._registry_lock:
            worker = self._workers.get(worker_id)
            if worker is None:
                return False
            worker.heartbeat_at = utc(None)
            worker.running = running
            return worker.stop_requested

    async def worker_deregister(self, *, worker_id: str) -> None:
        """Forget the worker."""
        with self._registry_lock:
            self._workers.pop(worker_id, None)

    async def worker_list(self) -> list[WorkerRecord]:
        """Every worker, oldest first."""
        with self._registry_lock:
            workers = sorted(self._workers.values(), key=lambda w: (w.started_at, w.seq))
            return [worker.record() for worker in workers]

    async def worker_request_stop(self, *, worker_id: str | None = None) -> int:
        """Flag one worker, or all, to stop."""
        with self._registry_lock:
            targets = [
                worker
                for worker in self._workers.values()
                if worker_id is None or worker.info.id == worker_id
            ]
            for worker in targets:
                worker.stop_requested = True
        return len(targets)

    async def worker_prune(self, *, older_than: float, now: datetime | None = None) -> int:
        """Forget workers silent for more than ``older_than`` seconds."""
        cutoff = utc(now) - timedelta(seconds=older_than)
        with self._registry_lock:
            stale = [wid for wid, w in self._workers.items() if w.heartbeat_at < cutoff]
            for worker_id in stale:
                del self._workers[worker_id]
        return len(stale)
