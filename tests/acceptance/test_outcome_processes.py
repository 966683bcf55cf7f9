"""What the end of a job sets off, across real worker processes: a failed parent ends
its dependents as the workflow's policy says (none is left blocked), and a finished
job's webhook reaches a receiver that refuses it twice, signed, on the third attempt."""

from __future__ import annotations

import orjson
import pytest

from cli._support import eventually
from webhook_receiver import receiving
from workhorse.backends.base import NewJob, NewWorkflow, WorkflowPart
from workhorse.jobs import DependencyPolicy, JobState
from workhorse.webhooks import SIGNATURE_HEADER, verify_signature
from workhorse.webhooks.signing import new_secret

from .conftest import FAST, SiteFactory
from .feature_apps import add
from .test_feature_processes import runs
from .test_feature_processes import start as start_feature_worker
from .test_feature_processes import stop as stop_feature_workers
from .test_workflow_processes import start_workers, stop, wait_for_workflow

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
POLICIES: tuple[DependencyPolicy, ...] = ("fail", "cancel")


def _parts(policy: str) -> list[WorkflowPart]:
    """A parent that fails on both its attempts, an independent node, and the jobs
    behind them: two children of the parent (one also waits for the node), a grandchild,
    and a sibling that waits for the node only."""

    def node(name: str) -> NewJob:
        return NewJob(task="wf.node", args=f'["{name}-{policy}", 20]')

    return [
        WorkflowPart(NewJob(task="wf.fail", args=f'["parent-{policy}"]', max_attempts=2)),
        WorkflowPart(node("node")),
        WorkflowPart(node("child"), after=(0,)),
        WorkflowPart(node("child-of-both"), after=(0, 1)),
        WorkflowPart(node("grandchild"), after=(2,)),
        WorkflowPart(node("sibling"), after=(1,)),
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_failed_parents_dependents_end_and_none_stays_blocked(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    await start_workers(site, 2, "--concurrency", "2")
    flows = {
        policy: await site.store.workflow_insert(
            NewWorkflow(parts=_parts(policy), name=f"on-failure-{policy}", on_failure=policy)
        )
        for policy in POLICIES
    }
    for inserted in flows.values():
        await wait_for_workflow(site, inserted.id)
    stop(site)

    assert await site.count(JobState.BLOCKED) == 0, "a dependent was left blocked"
    for policy, inserted in flows.items():
        record = await site.store.workflow_get(workflow_id=inserted.id)
        assert record is not None
        parent, node, *dependents, sibling = record.parts
        assert (parent.state, parent.attempt) == (JobState.FAILED, 2), parent
        assert (node.state, sibling.state) == (JobState.COMPLETED, JobState.COMPLETED)
        ended = JobState.FAILED if policy == "fail" else JobState.CANCELLED
        for part in dependents:
            assert part.state is ended, part
            assert part.error is not None
            assert part.error.type == "DependencyFailedError", part.error
            assert str(parent.id) in part.error.message, part.error
            assert part.attempt == 0, "a dependent of a failed parent never runs"
    ran = runs(site.effects_file)
    expected = {f"{name}-{policy}" for name in ("node", "sibling") for policy in POLICIES}
    assert {name: len(times) for name, times in ran.items()} == {
        **{name: 1 for name in expected},
        **{f"parent-{policy}": 2 for policy in POLICIES},
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_a_webhook_refused_twice_is_delivered_signed_by_worker_processes(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    secret = new_secret()
    await site.store.webhook_secret_set(tenant="acme", secret=secret)
    with receiving(failures=2) as receiver:
        for _ in range(2):
            start_feature_worker(site, "webhooks", *FAST)
        job = add.options(tenant="acme", webhook=receiver.url).call(2, 3).to_new_job()
        (job_id,) = await site.insert([job])
        requests = await receiver.wait_for(3, timeout=60)

        async def logged() -> bool:
            return len(await site.store.webhook_delivery_list(job_id=job_id)) == 3

        await eventually(logged, timeout=30, what=f"three logged attempts\n{site.logs()}")
        workers = set((await site.registered()).values())
        stop_feature_workers(site)
    assert [w.proc.returncode for w in site.workers] == [0, 0], site.logs()

    assert [r.answered for r in requests] == [500, 500, 204]
    for request in requests:
        assert verify_signature(secret, request.body, request.headers[SIGNATURE_HEADER])
        assert not verify_signature(new_secret(), request.body, request.headers[SIGNATURE_HEADER])
    assert len({r.body for r in requests}) == 1, "the same event every time"
    assert len({r.headers["X-Workhorse-Delivery"] for r in requests}) == 1
    event = orjson.loads(requests[-1].body)
    assert {k: event[k] for k in ("id", "task", "tenant", "state", "result")} == {
        "id": job_id,
        "task": "hooks.add",
        "tenant": "acme",
        "state": "completed",
        "result": 5,
    }
    log = await site.store.webhook_delivery_list(job_id=job_id)
    assert [(a.attempt, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 204)]
    delivery = await site.store.job_get(job_id=log[0].delivery_job_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempt) == (JobState.COMPLETED, 3)
    assert delivery.worker_id in workers, "a worker process delivered it"
