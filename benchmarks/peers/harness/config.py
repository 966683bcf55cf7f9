"""What a system module reads at import time, in the runner and in its worker process."""

from __future__ import annotations

import os
from pathlib import Path

RUN_DIR = Path(os.environ.get("BENCH_RUN_DIR", "."))
"""This system's temporary directory."""
PG_DSN = os.environ.get("BENCH_PG_DSN", "")
"""This system's own PostgreSQL database."""
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
"""The harness's Redis database, which Redis-based systems also use for their queues."""
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
"""Jobs in flight in the worker being started."""
REDIS_DB = int(REDIS_URL.rsplit("/", 1)[1])
"""The database number in :data:`REDIS_URL`."""
