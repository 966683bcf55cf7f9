"""Effects: how a benchmark task proves it ran, and how the harness counts that.

Every task of every system calls :func:`record` (or :func:`record_latency`) when it runs.
Counts go to one Redis database that the harness owns, whatever the system under test
stores its jobs in, so the cost of proving completion is the same for everyone.

A Redis round trip per job would cost about as much as a fast system's whole job, so a
worker process counts in memory and a daemon thread flushes every few milliseconds: one
``INCRBY`` plus the earliest and latest completion times seen (a sorted set updated with
``LT``/``GT``), which is what the drain rate is computed from.
"""

from __future__ import annotations

import os
import threading
import time

import redis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
COUNT_KEY = "peers:effects:count"
TIMES_KEY = "peers:effects:times"
LATENCY_KEY = "peers:effects:latency"
FLUSH_INTERVAL = 0.01

_lock = threading.Lock()
_pending = 0
_first = 0.0
_last = 0.0
_flusher_pid = 0
_client: redis.Redis | None = None


def client() -> redis.Redis:
    """This process's Redis connection to the harness database."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(REDIS_URL)
    return _client


def record() -> None:
    """Count one completed job (cheap: the flush happens on another thread)."""
    global _pending, _first, _last
    now = time.time()
    with _lock:
        if _pending == 0:
            _first = now
        _pending += 1
        _last = now
    if _flusher_pid != os.getpid():
        _start_flusher()


def record_latency(sent: float) -> None:
    """Record the pickup latency of a job enqueued at ``sent`` (``time.time()``)."""
    started = time.time()
    client().rpush(LATENCY_KEY, repr(started - sent))
    record()


def _start_flusher() -> None:
    global _flusher_pid, _client
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
        _client = None  # a connection inherited through fork() is not ours to use
    threading.Thread(target=_flush_forever, name="bench-effects", daemon=True).start()


def _flush_forever() -> None:
    global _pending
    conn = redis.Redis.from_url(REDIS_URL)
    while True:
        time.sleep(FLUSH_INTERVAL)
        with _lock:
            count, first, last = _pending, _first, _last
            _pending = 0
        if count:
            pipe = conn.pipeline(transaction=False)
            pipe.incrby(COUNT_KEY, count)
            pipe.zadd(TIMES_KEY, {"first": first}, lt=True)
            pipe.zadd(TIMES_KEY, {"last": last}, gt=True)
            pipe.execute()


class EffectsReader:
    """The harness side: reset and read the counts."""

    def __init__(self) -> None:
        self.conn = redis.Redis.from_url(REDIS_URL)

    def reset(self) -> None:
        """Forget every effect counted so far."""
        self.conn.delete(COUNT_KEY, TIMES_KEY, LATENCY_KEY)

    def count(self) -> int:
        """Jobs that have recorded their effect (flushed within a few ms)."""
        return int(self.conn.get(COUNT_KEY) or 0)

    def span(self) -> tuple[float, float]:
        """Wall-clock times of the first and the last recorded completion."""
        first = self.conn.zscore(TIMES_KEY, "first")
        last = self.conn.zscore(TIMES_KEY, "last")
        return float(first or 0.0), float(last or 0.0)

    def latencies(self) -> list[float]:
        """Pickup latencies recorded so far, in seconds."""
        return [float(v) for v in self.conn.lrange(LATENCY_KEY, 0, -1)]

    def flush_db(self) -> None:
        """Empty the harness's own Redis database (never any other)."""
        self.conn.flushdb()
