"""Periodic jobs and limits across real worker processes: a schedule ticking every
second under three workers (one of them killed) enqueues each tick once; a per-key limit
of 2 is never exceeded under four workers, nor a rate limit."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli._support import WorkerProcess, eventually
from workhorse.backends.base import JobFilter, NewJob
from workhorse.jobs import JobState

from .conftest import FAST, Site, SiteFactory
from .feature_apps import hold, rated

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def start(site: Site, app: str, *flags: str) -> WorkerProcess:
    """A worker process of ``tests.acceptance.feature_apps:<app>`` on the site's store."""
    log = site.tmp / f"worker-{len(site.workers)}.log"
    worker = WorkerProcess(
        f"tests.acceptance.feature_apps:{app}", *flags, cwd=site.tmp, env=site.env, log=log
    )
    site.workers.append(worker)
    return worker


def stop(site: Site) -> None:
    """SIGTERM every worker still running and wait for them."""
    for worker in site.workers:
        if worker.proc.poll() is None:
            worker.signal(signal.SIGTERM)
    for worker in site.workers:
        worker.wait(30)


def runs(path: Path) -> dict[str, list[tuple[float, float, int]]]:
    """The effects file as (start, end, pid) per name."""
    found: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        name, begin, end, pid = line.split()
        found[name].append((float(begin), float(end), int(pid)))
    return found


def most_at_once(intervals: list[tuple[float, float, int]]) -> int:
    """The largest number of intervals that overlap at one instant."""
    edges = sorted(
        [(begin, 1) for begin, _, _ in intervals] + [(end, -1) for _, end, _ in intervals]
    )
    level = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("kind", KINDS)
async def test_a_schedule_ticks_once_per_second_under_three_workers(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    flt = JobFilter(task="tests.acceptance.feature_apps.every_second")
    victim = start(site, "schedules", *FAST)
    for _ in range(2):
        start(site, "schedules", *FAST)
    await eventually(
        lambda: _has_jobs(site, flt), timeout=30, what="the first tick\n" + site.logs()
    )
    # Ten seconds of ticking (this is the measurement, not a wait for an event); the
    # first worker, most likely the leader, is killed after four and another takes over.
    await asyncio.sleep(4)
    victim.proc.send_signal(signal.SIGKILL)
    await asyncio.sleep(6)
    stopped = datetime.now(UTC)
    stop(site)
    jobs = await site.store.job_list(filter=flt, limit=1000)
    ticks = sorted(job.run_at for job in jobs)
    assert len(ticks) == len(set(ticks)), "a tick was enqueued twice"
    assert len({job.meta["tick"] for job in jobs}) == len(jobs)
    gaps = {later - earlier for earlier, later in itertools.pairwise(ticks)}
    assert gaps == {timedelta(seconds=1)}, f"ticks were missed: {ticks}\n{site.logs()}"
    due = [tick for tick in ticks if tick <= stopped]
    assert abs(len(due) - 10) <= 1, f"{len(due)} ticks in 10 seconds: {due}"


async def _has_jobs(site: Site, flt: JobFilter) -> bool:
    return await site.store.job_count(filter=flt) > 0


@pytest.mark.parametrize("kind", KINDS)
async def test_a_per_key_limit_of_two_holds_under_four_workers(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    # Two slots per worker, six runnable at once: no worker can take them all.
    for _ in range(4):
        start(site, "limits", "--concurrency", "2", *FAST)
    await eventually(
        lambda: _registered(site, 4), timeout=30, what="four workers up\n" + site.logs()
    )
    jobs: list[NewJob] = [hold.call(key, 150).to_new_job() for key in "abc" for _ in range(8)]
    await site.insert(jobs)
    await eventually(
        lambda: _all_done(site, len(jobs)), timeout=60, what="every job completed\n" + site.logs()
    )
    stop(site)
    found = runs(site.effects_file)
    assert sorted(found) == ["a", "b", "c"]
    for key in "abc":
        assert len(found[key]) == 8
        assert most_at_once(found[key]) == 2, f"key {key}: {sorted(found[key])}"
    pids = {pid for key in "abc" for _, _, pid in found[key]}
    assert len(pids) > 1, "one worker ran everything: the limit was not shared"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rate_limit_holds_across_four_workers(make_site: SiteFactory, kind: str) -> None:
    site = await make_site(kind)
    await site.insert([rated.call().to_new_job() for _ in range(12)])
    for _ in range(4):
        start(site, "limits", "--concurrency", "4", *FAST)
    await eventually(
        lambda: _all_done(site, 12), timeout=60, what="every job completed\n" + site.logs()
    )
    stop(site)
    starts = sorted(begin for begin, _, _ in runs(site.effects_file)["rated"])
    assert len(starts) == 12
    # Five starts per two seconds: the sixth start comes a window after the first
    # (less the time between a claim and the task reading the clock).
    spans = [later - earlier for earlier, later in zip(starts, starts[5:], strict=False)]
    assert min(spans) >= 1.8, starts


async def _registered(site: Site, count: int) -> bool:
    return len(await site.registered()) >= count


async def _all_done(site: Site, count: int) -> bool:
    return await site.count(JobState.COMPLETED) >= count
