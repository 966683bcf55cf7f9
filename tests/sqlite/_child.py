"""A separate process using a SQLite store, driven by the tests in this folder:

python _child.py insert URL COUNT          insert COUNT jobs, print their ids
python _child.py insert-and-die URL        insert one job, print its id, SIGKILL itself
python _child.py stress URL NAME PER_PROCESS TOTAL OUT
    insert PER_PROCESS jobs while claiming and completing anyone's, until TOTAL jobs
    are completed; write what this process claimed to OUT (JSON)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path

from workhorse.backends.base import JobFilter, NewJob, Outcome
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.jobs import JobState

CLAIMERS = 3


async def insert(url: str, count: int) -> None:
    store = SQLiteBackend(url)
    await store.connect()
    rows = await store.job_insert_many([NewJob(task="child.insert") for _ in range(count)])
    await store.close()
    print(json.dumps([row.id for row in rows]), flush=True)


async def insert_and_die(url: str) -> None:
    store = SQLiteBackend(url)
    await store.connect()
    (row,) = await store.job_insert_many([NewJob(task="child.durable")])
    print(row.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


async def stress(url: str, name: str, per_process: int, total: int, out: Path) -> None:
    store = SQLiteBackend(url)
    await store.connect()
    rng = random.Random(name)
    claimed: list[int] = []
    inserted = 0

    async def inserter() -> None:
        nonlocal inserted
        while inserted < per_process:
            count = min(rng.randint(1, 40), per_process - inserted)
            rows = await store.job_insert_many(
                [NewJob(task="stress", args=json.dumps([name, i])) for i in range(count)]
            )
            assert all(row.created for row in rows)
            inserted += count

    async def claimer(index: int) -> None:
        while True:
            jobs = await store.job_claim(
                worker_id=f"{name}-{index}",
                queues=None,
                limit=rng.randint(1, 25),
                lease_seconds=600,
            )
            if jobs:
                outcomes = [
                    Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED)
                    for job in jobs
                ]
                applied = await store.job_complete_many(outcomes)
                assert all(applied), f"{name}: a completion was fenced off: {applied}"
                claimed.extend(job.id for job in jobs)
                continue
            done = await store.job_count(filter=JobFilter(states=(JobState.COMPLETED,)))
            if done >= total:
                return
            await asyncio.sleep(0.002)  # nothing due yet: others are still inserting

    await asyncio.gather(inserter(), *(claimer(i) for i in range(CLAIMERS)))
    await store.close()
    out.write_text(json.dumps({"claimed": claimed, "inserted": inserted}))


def main(argv: list[str]) -> None:
    command, url, *rest = argv
    if command == "insert":
        asyncio.run(insert(url, int(rest[0])))
    elif command == "insert-and-die":
        asyncio.run(insert_and_die(url))
    elif command == "stress":
        name, per_process, total, out = rest
        asyncio.run(stress(url, name, int(per_process), int(total), Path(out)))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
