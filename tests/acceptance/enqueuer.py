"""A process of its own that enqueues while workers run (the app of ``apps.py``, its store
``$WORKHORSE_URL``)::

    python -m tests.acceptance.enqueuer COUNT OUT SEED

enqueues COUNT ``acceptance.effect`` jobs in batches of random sizes (single jobs, small
batches and ones large enough for PostgreSQL's COPY), then writes their ids to OUT (JSON).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

from .apps import app, effect

BATCH_SIZES = (1, 1, 3, 20, 200)


async def enqueue(count: int, out: Path, seed: int) -> None:
    """Enqueue ``count`` jobs; write their ids to ``out``."""
    rng = random.Random(seed)
    ids: list[int] = []
    try:
        while len(ids) < count:
            size = min(rng.choice(BATCH_SIZES), count - len(ids))
            jobs = await app.enqueue_many([effect.call(len(ids) + i, 0) for i in range(size)])
            ids.extend(job.id for job in jobs)
    finally:
        await app.aclose()
    out.write_text(json.dumps(ids))


if __name__ == "__main__":
    count, out, seed = sys.argv[1:]
    asyncio.run(enqueue(int(count), Path(out), int(seed)))
