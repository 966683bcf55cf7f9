"""The app that CLI and acceptance tests run in real worker processes
(``workhorse worker start tests.acceptance.apps:app``).

Its store is ``$WORKHORSE_URL``. Tasks that have an effect append one line
``job_id attempt pid`` to the file ``$WORKHORSE_TEST_EFFECTS``: an O_APPEND write of a
short line is atomic, and it survives a SIGKILL of the process right after it.
"""

from __future__ import annotations

import asyncio
import os

from workhorse import Retry, Workhorse, current_job

EFFECTS_ENV = "WORKHORSE_TEST_EFFECTS"

app = Workhorse()


def record_effect() -> None:
    """Append this attempt's line to the effects file."""
    job = current_job()
    line = f"{job.job_id} {job.attempt} {os.getpid()}\n".encode()
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_effects(path: str | os.PathLike[str]) -> dict[int, int]:
    """How many effects each job id recorded."""
    counts: dict[int, int] = {}
    if not os.path.exists(path):
        return counts
    with open(path) as file:
        for line in file:
            job_id = int(line.split()[0])
            counts[job_id] = counts.get(job_id, 0) + 1
    return counts


@app.task(name="acceptance.effect")
async def effect(n: int, ms: float) -> int:
    """Work for ``ms`` milliseconds, then record the effect."""
    await asyncio.sleep(ms / 1000)
    record_effect()
    return n


@app.task(name="acceptance.slow")
async def slow(seconds: float) -> str:
    """Work for ``seconds``, then record the effect (released, it records nothing)."""
    await asyncio.sleep(seconds)
    record_effect()
    return "done"


@app.task(name="acceptance.add")
def add(a: int, b: int) -> int:
    """A sync task with a result."""
    return a + b


@app.task(name="acceptance.boom", retry=Retry(max_attempts=1))
def boom(message: str) -> None:
    """Fail at once, for jobs that must end failed with a traceback."""
    raise ValueError(message)


@app.task(name="acceptance.flaky")
async def flaky() -> None:
    """Fail every attempt under the app's default retry policy (it declares none)."""
    raise ConnectionError("the partner is down")


@app.task(name="acceptance.chatty")
async def chatty(n: int) -> int:
    """Log through the job's logger, as tasks do."""
    current_job().log.warning("processing %d", n)
    return n
