"""Workflows across real worker processes: a 20-node graph run by three workers starts
every node only after all it waits for has ended, and a pipeline whose second stage
fails once resumes there (on whichever worker) without running its first stage again."""

from __future__ import annotations

import random
import signal
from collections import Counter

import pytest

from cli._support import WorkerProcess, eventually
from workhorse.backends.base import NewJob, NewWorkflow, WorkflowPart
from workhorse.jobs import JobState, WorkflowState

from .conftest import FAST, Site, SiteFactory
from .test_feature_processes import runs
from .workflow_apps import FAIL_ONCE_ENV, ingest

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NODES = 20


def start(site: Site, *flags: str) -> WorkerProcess:
    """A worker process of the workflow app on the site's store."""
    log = site.tmp / f"worker-{len(site.workers)}.log"
    env = {**site.env, FAIL_ONCE_ENV: str(site.tmp / "parse-failed-once")}
    worker = WorkerProcess(
        "tests.acceptance.workflow_apps:app", *flags, cwd=site.tmp, env=env, log=log
    )
    site.workers.append(worker)
    return worker


async def start_workers(site: Site, count: int, *flags: str) -> None:
    """Start ``count`` workers and wait until every one has registered."""
    for _ in range(count):
        start(site, *flags, *FAST)

    async def registered() -> bool:
        return len(await site.registered()) == count

    await eventually(registered, timeout=60, what=f"{count} workers to start\n{site.logs()}")


def stop(site: Site) -> None:
    """SIGTERM every worker and wait for them."""
    for worker in site.workers:
        if worker.proc.poll() is None:
            worker.signal(signal.SIGTERM)
    for worker in site.workers:
        assert worker.wait(30) == 0, site.logs()


async def wait_for_workflow(site: Site, workflow_id: int, timeout: float = 60) -> None:
    """Poll the store until the workflow has ended."""
    from cli._support import eventually
    from workhorse.backends.base import WorkflowRecord

    found: list[WorkflowRecord] = []

    async def ended() -> bool:
        record = await site.store.workflow_get(workflow_id=workflow_id)
        found[:] = [record] if record is not None else []
        return record is not None and record.state is not WorkflowState.ACTIVE

    await eventually(ended, timeout=timeout, what=f"workflow {workflow_id} to end\n{site.logs()}")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_twenty_node_graph_under_three_workers(make_site: SiteFactory, kind: str) -> None:
    site = await make_site(kind)
    rng = random.Random(20)
    edges = {i: sorted(rng.sample(range(i), k=min(i, rng.randint(1, 3)))) for i in range(1, NODES)}
    edges[0] = []
    parts = [
        WorkflowPart(
            job=NewJob(task="wf.node", args=f'["n{i}", {rng.uniform(20, 80):.1f}]'),
            after=tuple(edges[i]),
        )
        for i in range(NODES)
    ]
    await start_workers(site, 3, "--concurrency", "4")
    inserted = await site.store.workflow_insert(NewWorkflow(parts=parts, name="dag"))
    await wait_for_workflow(site, inserted.id)
    stop(site)
    record = await site.store.workflow_get(workflow_id=inserted.id)
    assert record is not None
    assert record.state is WorkflowState.COMPLETED, [p.error for p in record.parts]
    found = runs(site.effects_file)
    assert sorted(found) == sorted(f"n{i}" for i in range(NODES))
    assert all(len(times) == 1 for times in found.values())
    for child, parents in edges.items():
        child_start = found[f"n{child}"][0][0]
        for parent in parents:
            parent_end = found[f"n{parent}"][0][1]
            assert child_start >= parent_end, f"n{child} started before n{parent} ended"
    assert len({pid for times in found.values() for _, _, pid in times}) >= 2
    assert await site.count(JobState.BLOCKED) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_a_pipeline_resumes_at_its_failed_stage_on_any_worker(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    await start_workers(site, 2, "--concurrency", "2")
    (job_id,) = await site.insert(
        [NewJob(task="wf.ingest", args="[11]", max_attempts=3, meta=_pipeline_meta())]
    )

    async def done() -> bool:
        record = await site.store.job_get(job_id=job_id)
        return record is not None and record.state.is_final

    await eventually(done, timeout=60, what=f"pipeline job {job_id}\n{site.logs()}")
    stop(site)
    record = await site.store.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED, record.error
    assert record.result == "doc 11: 42 words"
    assert record.attempt == 2
    assert record.stage == "index"
    counts = Counter({name: len(times) for name, times in runs(site.effects_file).items()})
    assert counts == Counter(validate=1, parse=2, index=1)


def _pipeline_meta() -> dict[str, object]:
    return {"pipeline": ingest.progress(0)}
