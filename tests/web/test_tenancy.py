"""Tenant isolation on every operation of the API, table-driven from the OpenAPI schema.

``RULES`` says how each operation keeps tenants apart; an operation of the schema that
is missing from it fails ``test_every_operation_has_a_tenant_rule``, so a new endpoint
cannot ship without stating (and testing) its tenant check. Then, over SQLite and
PostgreSQL, with the keys of two tenants (acme, globex) and an admin:

- BY_ID: another tenant's job or workflow id answers 404, word for word like an id that
  does not exist, and the job or workflow is left untouched (live and finished alike);
- LISTING: nothing of globex's shows in acme's answers, whatever filter acme sends
  (``tenant=globex`` included), and acme's answers, aggregates included, are the same
  before and after globex enqueued, finished and failed jobs;
- ENQUEUE: a tenant key cannot enqueue for another tenant, and another tenant's unique
  key does not hand out its job;
- ADMIN: tenant keys get 403; SHARED: workers are infrastructure every key may see, but
  they carry no job data; SESSION: the dashboard session describes its own key only;
  PUBLIC: answers without credentials, and without tenant data.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from workhorse import group
from workhorse.backends.base import JobFilter, NewJob, Outcome, WorkerInfo, WorkflowRecord
from workhorse.jobs import JobError, JobRecord, JobState
from workhorse.web import create_app
from workhorse.webhooks.event import DELIVER_TASK

from ._tasks import make_app
from .conftest import Live


class Rule(enum.Enum):
    """How an operation keeps tenants apart."""

    BY_ID = "another tenant's id is a 404 and the job is untouched"
    LISTING = "only the caller's jobs, in lists and aggregates alike"
    ENQUEUE = "jobs are stamped with the key's tenant"
    ADMIN = "admin keys only"
    SHARED = "shared infrastructure, no job data"
    SESSION = "the caller's own session"
    PUBLIC = "no credentials, no tenant data"


RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/jobs"): Rule.ENQUEUE,
    ("GET", "/jobs"): Rule.LISTING,
    ("GET", "/jobs/{job_id}"): Rule.BY_ID,
    ("DELETE", "/jobs/{job_id}"): Rule.BY_ID,
    ("POST", "/jobs/{job_id}/retry"): Rule.BY_ID,
    ("GET", "/jobs/{job_id}/webhooks"): Rule.BY_ID,
    ("GET", "/workflows/{workflow_id}"): Rule.BY_ID,
    ("POST", "/workflows/{workflow_id}/cancel"): Rule.BY_ID,
    ("GET", "/schedules"): Rule.LISTING,
    ("GET", "/queues"): Rule.LISTING,
    ("GET", "/throughput"): Rule.LISTING,
    ("GET", "/workers"): Rule.SHARED,
    ("GET", "/metrics"): Rule.ADMIN,
    ("GET", "/healthz"): Rule.PUBLIC,
    ("GET", "/readyz"): Rule.PUBLIC,
    ("POST", "/dashboard/login"): Rule.PUBLIC,
    ("GET", "/dashboard/session"): Rule.SESSION,
    ("POST", "/dashboard/logout"): Rule.SESSION,
}

MARKER = "globex-private-marker"
"""Found in globex's jobs (arguments, labels, queue, unique key) and nowhere else."""
GLOBEX_QUEUE = "globex-queue"


def _summary_of_jobs(body: Any) -> Any:
    return sorted(job["id"] for job in body["jobs"])


def _summary_of_queues(body: Any) -> Any:
    return sorted((q["queue"], sorted(q["counts"].items()), q["total"]) for q in body)


def _summary_of_schedules(body: Any) -> Any:
    return sorted((s["name"], s["tenant"], s["last_job_id"]) for s in body)


def _summary_of_throughput(body: Any) -> Any:
    return [sum(b["completed"] for b in body["buckets"]), sum(b["failed"] for b in body["buckets"])]


LISTING_SUMMARIES: dict[str, Callable[[Any], Any]] = {
    "/jobs": _summary_of_jobs,
    "/schedules": _summary_of_schedules,
    "/queues": _summary_of_queues,
    "/throughput": _summary_of_throughput,
}
"""What must not change in acme's answers when globex's jobs come and go (the parts that
move with the clock, like ages and time slices, left out)."""
LISTING_PARAMS: list[dict[str, str]] = [
    {},
    {"tenant": "globex"},
    {"queue": GLOBEX_QUEUE},
    {"label": f"owner:{MARKER}"},
    {"status": "cancelled"},
    {"task": "echo"},
]
"""Filters acme tries; an operation ignores the ones it does not take."""


def _operations() -> set[tuple[str, str]]:
    schema = create_app(make_app("sqlite:///unused.db")).openapi()
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}


def test_every_operation_has_a_tenant_rule() -> None:
    missing = _operations() - set(RULES)
    assert not missing, (
        f"operations without a tenant rule: {sorted(missing)}. Say in RULES how each keeps "
        "tenants apart (and make the checks below cover it)."
    )


def _ops(rule: Rule) -> list[tuple[str, str]]:
    """The operations of the API that follow ``rule``."""
    served = _operations()
    return [op for op, r in RULES.items() if r is rule and op in served]


def _id_param(path: str) -> str:
    """The id a BY_ID path takes: ``job_id`` or ``workflow_id``."""
    (param,) = re.findall(r"\{(\w+_id)\}", path)
    return str(param)


class World:
    """Two tenants with jobs in several states, and their clients."""

    def __init__(self, live: Live) -> None:
        self.live = live

    async def build(self) -> None:
        live = self.live
        self.acme = live.client(await live.key("acme"))
        self.admin = live.client(await live.key(admin=True))
        self.anonymous = live.client()
        self.acme_live = await live.enqueue("echo", args=[1], tenant="acme", delay=3600)
        self.acme_final = await live.enqueue("echo", args=[2], tenant="acme", delay=3600)
        await live.app.cancel(self.acme_final)
        self.acme_workflow = await self.workflow("acme", "mine")

    async def workflow(self, tenant: str, value: str, *, cancelled: bool = False) -> int:
        """A workflow of two waiting parts for ``tenant``; its id."""
        echo = self.live.app.get_task("echo")
        handle = await group(echo.call(value), echo.call(value), tenant=tenant).enqueue()
        if cancelled:
            await self.live.app.cancel_workflow(handle.id)
        return handle.id

    async def add_globex(self) -> None:
        """Globex's jobs: waiting, cancelled, completed and failed ones."""
        store = await self.live.app.backend()
        marked = NewJob(
            task="echo",
            args=f'["{MARKER}"]',
            queue=GLOBEX_QUEUE,
            tenant="globex",
            labels={"owner": MARKER},
        )
        rows = await store.job_insert_many(
            [
                NewJob(**{**_fields(marked), "unique_key": f"acme/{MARKER}", "delay": 3600}),
                NewJob(**{**_fields(marked), "delay": 3600}),
                marked,
                marked,
            ]
        )
        self.globex_live, self.globex_final, done, failed = (row.id for row in rows)
        await self.live.app.cancel(self.globex_final)
        claimed = await store.job_claim(
            worker_id="w", queues=None, limit=2, lease_seconds=30, job_ids=[done, failed]
        )
        ends = {done: JobState.COMPLETED, failed: JobState.FAILED}
        outcomes = [
            Outcome(
                job_id=job.id,
                lease_token=job.lease_token,
                state=ends[job.id],
                result=f'"{MARKER}"',
                error=JobError(type="E", message=MARKER),
            )
            for job in claimed
        ]
        assert await store.job_complete_many(outcomes) == [True, True]
        self.globex_workflows = [
            await self.workflow("globex", MARKER),
            await self.workflow("globex", MARKER, cancelled=True),
        ]
        echo = self.live.app.get_task("echo")
        self.live.app.schedule(
            echo.options(tenant="globex", queue=GLOBEX_QUEUE).call(MARKER),
            every=3600,
            name=f"schedule-{MARKER}",
        )

    def globex_ids(self, param: str) -> list[int]:
        """Globex's ids of the kind ``param`` names, live and finished."""
        if param == "job_id":
            return [self.globex_live, self.globex_final]
        return list(self.globex_workflows)

    async def globex_state(self) -> tuple[list[JobRecord], list[WorkflowRecord]]:
        """Globex's jobs and workflows as stored now."""
        store = await self.live.app.backend()
        jobs = []
        for job_id in self.globex_ids("job_id"):
            record = await store.job_get(job_id=job_id)
            assert record is not None
            jobs.append(record)
        workflows = [await self.live.app.get_workflow(i) for i in self.globex_workflows]
        return jobs, workflows


def _fields(job: NewJob) -> dict[str, Any]:
    return {name: getattr(job, name) for name in NewJob.__dataclass_fields__}


@pytest.fixture
async def world(live: Live) -> World:
    built = World(live)
    await built.build()
    return built


def _no_marker(response: httpx.Response, what: str) -> None:
    assert MARKER not in response.text, f"{what} shows globex's data: {response.text[:500]}"
    assert GLOBEX_QUEUE not in response.text, f"{what} shows globex's queue"


async def test_by_id_another_tenants_job_is_a_404_and_untouched(world: World) -> None:
    await world.add_globex()
    before = await world.globex_state()
    for method, path in _ops(Rule.BY_ID):
        param = _id_param(path)
        kind = param.removesuffix("_id")
        targets = world.globex_ids(param)
        absent = max(targets) + 10_000
        nothing = await world.acme.request(method, path.format(**{param: absent}))
        assert nothing.status_code == 404, (method, path)
        for target in targets:
            answer = await world.acme.request(method, path.format(**{param: target}))
            assert answer.status_code == 404, (method, path, target, answer.text)
            assert answer.json() == {
                "error": {"type": "not_found", "message": f"{kind} {target} not found"}
            }
            _no_marker(answer, f"{method} {path}")
        assert await world.globex_state() == before, f"{method} {path} changed globex's data"
    # The same operations do work on the caller's own jobs (the 404 is the tenant check).
    assert (await world.acme.get(f"/jobs/{world.acme_live}")).status_code == 200
    assert (await world.acme.post(f"/jobs/{world.acme_final}/retry")).status_code == 200
    assert (await world.acme.delete(f"/jobs/{world.acme_live}")).status_code == 200
    assert (await world.acme.get(f"/workflows/{world.acme_workflow}")).status_code == 200
    assert (await world.admin.get(f"/jobs/{world.globex_live}")).status_code == 200
    assert (await world.admin.get(f"/workflows/{world.globex_workflows[0]}")).status_code == 200


async def test_listings_show_and_count_only_the_callers_jobs(world: World) -> None:
    async def answers() -> dict[tuple[str, str], Any]:
        seen = {}
        for method, path in _ops(Rule.LISTING):
            for params in LISTING_PARAMS:
                response = await world.acme.request(method, path, params=params)
                assert response.status_code == 200, (path, params, response.text)
                _no_marker(response, f"{method} {path} {params}")
                seen[path, repr(params)] = LISTING_SUMMARIES[path](response.json())
        return seen

    alone = await answers()
    await world.add_globex()
    assert await answers() == alone, "globex's jobs changed what acme sees"
    # Sanity: the admin sees globex's jobs through the same operations.
    every = await world.admin.get("/jobs", params={"tenant": "globex"})
    assert MARKER in every.text
    assert MARKER in (await world.admin.get("/schedules")).text
    assert set(LISTING_SUMMARIES) >= {path for _, path in _ops(Rule.LISTING)}


async def test_enqueue_stamps_the_keys_tenant(world: World) -> None:
    await world.add_globex()
    ((method, path),) = _ops(Rule.ENQUEUE)
    refused = await world.acme.request(method, path, json={"task": "echo", "tenant": "globex"})
    assert refused.status_code == 403
    # Globex's live job holds this unique key in the form acme's would take: acme still
    # gets a job of its own, never globex's.
    mine = await world.acme.request(method, path, json={"task": "echo", "unique_key": MARKER})
    assert mine.status_code in (201, 409), mine.text
    _no_marker(mine, "an enqueue with another tenant's unique key")
    if mine.status_code == 201:
        assert mine.json()["id"] != world.globex_live
        assert mine.json()["tenant"] == "acme"


async def test_admin_operations_refuse_tenant_keys(world: World) -> None:
    await world.add_globex()
    for method, path in _ops(Rule.ADMIN):
        answer = await world.acme.request(method, path)
        assert answer.status_code == 403, (method, path)
        _no_marker(answer, f"{method} {path}")
        assert (await world.admin.request(method, path)).status_code == 200


async def test_shared_operations_carry_no_job_data(world: World) -> None:
    await world.add_globex()
    store = await world.live.app.backend()
    await store.worker_register(
        worker=WorkerInfo(id="w-1", hostname="box", pid=1, queues=None, concurrency=2)
    )
    for method, path in _ops(Rule.SHARED):
        answer = await world.acme.request(method, path)
        assert answer.status_code == 200, (method, path)
        _no_marker(answer, f"{method} {path}")
        assert "globex" not in answer.text


async def test_public_and_session_operations_show_no_tenant_data(world: World) -> None:
    await world.add_globex()
    for method, path in _ops(Rule.PUBLIC):
        answer = await world.anonymous.request(method, path)
        assert answer.status_code < 500, (method, path)
        assert "globex" not in answer.text, (method, path)
        assert "acme" not in answer.text, (method, path)
    token = await world.live.key("acme")
    origin = {"Origin": world.live.url}
    login = await world.anonymous.post("/dashboard/login", json={"api_key": token}, headers=origin)
    assert login.status_code == 200, login.text
    headers = {"X-CSRF-Token": login.json()["csrf"], **origin}
    for method, path in _ops(Rule.SESSION):
        answer = await world.anonymous.request(method, path, headers=headers)
        assert answer.status_code < 400, (method, path, answer.text)
        assert "globex" not in answer.text, (method, path)


async def test_no_key_can_enqueue_a_builtin_task(world: World) -> None:
    """The webhook delivery task (and every ``workhorse.*`` name) is the stores' own: a
    tenant that could enqueue it would choose the URL (any host the worker reaches) and
    the event (another tenant's job id, a forged result)."""
    await world.add_globex()
    forged = {"id": world.globex_live, "state": "completed", "result": "forged"}
    attack = {"task": DELIVER_TASK, "args": ["http://127.0.0.1:9/internal", forged]}
    for client in (world.acme, world.admin):
        for task in (DELIVER_TASK, "workhorse.anything"):
            answer = await client.post("/jobs", json={**attack, "task": task})
            assert answer.status_code == 422, answer.text
            error = answer.json()["error"]
            assert error["type"] == "unknown_task"
            assert error["message"].startswith(f"no task named {task!r}")
            assert DELIVER_TASK not in error["message"].removeprefix(f"no task named {task!r}")
    store = await world.live.app.backend()
    assert await store.job_list(filter=JobFilter(task=DELIVER_TASK)) == []
    assert await store.webhook_delivery_list(job_id=world.globex_live) == []
