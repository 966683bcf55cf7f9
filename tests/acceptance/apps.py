"""The app that CLI and acceptance tests run in real worker processes
(``workhorse worker start tests.acceptance.apps:app``).

Its store is ``$WORKHORSE_URL``. Tasks that have an effect append one line
``job_id attempt pid`` to the file ``$WORKHORSE_TEST_EFFECTS``: an O_APPEND write of a
short line is atomic, and it survives a SIGKILL of the process right after it. The slow
task also appends such a line to ``$WORKHORSE_TEST_STARTS`` as its attempt begins.
"""

from __future__ import annotations

import asyncio
import os

from workhorse import Retry, Workhorse, current_job

EFFECTS_ENV = "WORKHORSE_TEST_EFFECTS"
STARTS_ENV = "WORKHORSE_TEST_STARTS"

app = Workhorse()


def record_effect() -> None:
    """Append this attempt's line to the effects file."""
    _append_attempt(os.environ[EFFECTS_ENV])


def record_start() -> None:
    """Append this attempt's line to the starts file: it runs in the worker now."""
    _append_attempt(os.environ[STARTS_ENV])


def _append_attempt(path: str) -> None:
    job = current_job()
    line = f"{job.job_id} {job.attempt} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_effects(path: str | os.PathLike[str]) -> dict[int, int]:
    """How many lines each job id has in the effects (or starts) file at ``path``."""
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
    """Record its start, work for ``seconds``, then record the effect (released, it
    records no effect)."""
    record_start()
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
