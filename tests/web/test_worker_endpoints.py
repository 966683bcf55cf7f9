"""Endpoints that need jobs to run: a server with an in-process worker (``serve
--with-worker``): readiness, throughput and the Prometheus metrics. (Metrics across
separate processes: tests/acceptance/test_metrics_processes.py.)"""

from __future__ import annotations

import time
from typing import Any

import httpx

from worker._support import eventually

from ._metrics import Samples, samples, scrape_until, value
from .conftest import Live


async def wait_final(live: Live, job_ids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for job_id in job_ids:
        left = max(0.1, deadline - time.monotonic())
        await live.app.job(job_id).wait(timeout=left)


async def running(client: httpx.AsyncClient, job_id: int) -> None:
    """Wait until the API shows job ``job_id`` running."""

    async def state() -> str:
        return str((await client.get(f"/jobs/{job_id}")).json()["state"])

    await eventually(state, lambda state: state == "running", timeout=30, what="the job to run")


async def test_readyz_checks_the_in_process_worker(live_worker: Live) -> None:
    ready = await live_worker.client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "worker": "ok"}
    workers = (await live_worker.client(await live_worker.key("acme")).get("/workers")).json()
    assert len(workers) == 1
    assert workers[0]["concurrency"] == 1


async def test_jobs_posted_to_the_api_run_and_show_in_throughput(live_worker: Live) -> None:
    client = live_worker.client(await live_worker.key("acme"))
    made = [
        (await client.post("/jobs", json={"task": "add", "args": [i, i]})).json()["id"]
        for i in range(3)
    ]
    marker = live_worker.tmp / "never-made"
    failing = await client.post("/jobs", json={"task": "fail_unless", "args": [str(marker)]})
    await wait_final(live_worker, [*made, failing.json()["id"]])
    results = [(await client.get(f"/jobs/{job_id}")).json() for job_id in made]
    assert [r["result"] for r in results] == [0, 2, 4]
    assert {r["state"] for r in results} == {"completed"}
    failed = (await client.get(f"/jobs/{failing.json()['id']}")).json()
    assert failed["state"] == "failed"
    assert failed["error"]["type"].endswith("RuntimeError")
    assert "marker never-made is missing" in failed["error"]["message"]
    assert "Traceback" in failed["error"]["traceback"]

    # Outcomes reach the statistics about a second after they are stored.
    async def throughput() -> Any:
        return (await client.get("/throughput", params={"minutes": 5})).json()

    found = await eventually(
        throughput,
        lambda found: sum(b["completed"] + b["failed"] for b in found["buckets"]) >= 4,
        timeout=30,
        what="the outcomes in the throughput",
    )
    assert found["bucket_seconds"] == 60
    assert len(found["buckets"]) == 5
    assert sum(b["completed"] for b in found["buckets"]) == 3
    assert sum(b["failed"] for b in found["buckets"]) == 1
    assert sum(b["retried"] for b in found["buckets"]) == 0
    assert found["buckets"][-1]["completed"] + found["buckets"][-2]["completed"] == 3
    admin = live_worker.client(await live_worker.key(admin=True))
    others = (await admin.get("/throughput", params={"tenant": "globex"})).json()
    assert sum(b["completed"] + b["failed"] for b in others["buckets"]) == 0


async def test_metrics_count_jobs_per_queue_state_and_task(live_worker: Live) -> None:
    client = live_worker.client(await live_worker.key("acme"))
    made = [
        (await client.post("/jobs", json={"task": "echo", "args": [i]})).json()["id"]
        for i in range(2)
    ]
    made.append(await live_worker.enqueue("fail_unless", args=["no-marker"], max_attempts=2))
    await client.post("/jobs", json={"task": "echo", "queue": "later", "delay": 3600})
    await wait_final(live_worker, made)
    gate = live_worker.tmp / "never-opened"  # the only slot stays taken until the cancel
    gated = (await client.post("/jobs", json={"task": "gated", "args": [str(gate)]})).json()
    await running(client, gated["id"])
    assert (await client.delete(f"/jobs/{gated['id']}")).status_code == 200
    await wait_final(live_worker, [gated["id"]])
    admin = live_worker.client(await live_worker.key(admin=True, read_only=True))
    expected = {
        ("default", "echo"): {"enqueued": 2, "started": 2, "completed": 2},
        ("later", "echo"): {"enqueued": 1},
        ("default", "fail_unless"): {"enqueued": 1, "started": 2, "retried": 1, "failed": 1},
        ("default", "gated"): {"enqueued": 1, "started": 1, "cancelled": 1},
    }

    def counted(found: Samples) -> bool:
        return all(
            value(found, f"workhorse_jobs_{event}_total", queue=queue, task=task)
            == counts.get(event, 0)
            for (queue, task), counts in expected.items()
            for event in ("enqueued", "started", "completed", "retried", "failed", "cancelled")
        )

    found = await scrape_until(admin, counted, "every job counter")
    for (queue, task), attempts in {
        ("default", "echo"): 2,
        ("default", "fail_unless"): 2,
        ("default", "gated"): 1,
    }.items():
        histogram = {"queue": queue, "task": task}
        assert value(found, "workhorse_job_run_seconds_count", **histogram) == attempts
        assert value(found, "workhorse_job_run_seconds_bucket", le="+Inf", **histogram) == attempts
        assert (value(found, "workhorse_job_run_seconds_sum", **histogram) or 0) > 0
    assert value(found, "workhorse_job_run_seconds_count", queue="later", task="echo") is None
    assert value(found, "workhorse_queue_jobs", queue="default", state="completed") == 2
    assert value(found, "workhorse_queue_jobs", queue="default", state="failed") == 1
    assert value(found, "workhorse_queue_jobs", queue="default", state="cancelled") == 1
    assert value(found, "workhorse_queue_jobs", queue="later", state="scheduled") == 1
    assert value(found, "workhorse_queue_jobs", queue="default", state="running") == 0
    assert value(found, "workhorse_queue_oldest_job_age_seconds", queue="default") == 0
    assert value(found, "workhorse_queue_oldest_job_age_seconds", queue="later") == 0
    assert value(found, "workhorse_workers_live") == 1
    assert value(found, "workhorse_workers_registered") == 1
    assert value(found, "workhorse_worker_attempts_total", outcome="completed") == 2
    assert value(found, "workhorse_worker_attempts_total", outcome="retried") == 1
    assert value(found, "workhorse_worker_attempts_total", outcome="failed") == 1
    assert value(found, "workhorse_worker_attempts_total", outcome="cancelled") == 1
    assert value(found, "workhorse_worker_running") == 0


async def test_oldest_job_age_grows_while_nothing_claims(live_sqlite: Live) -> None:
    admin = live_sqlite.client(await live_sqlite.key(admin=True))
    await admin.post("/jobs", json={"task": "echo", "queue": "stuck"})

    async def metrics() -> Samples:
        return samples((await admin.get("/metrics")).text)

    found = await eventually(
        metrics,
        lambda found: found[("workhorse_queue_oldest_job_age_seconds", (("queue", "stuck"),))] > 0,
        what="the oldest job's age to grow",
    )
    assert found[("workhorse_queue_jobs", (("queue", "stuck"), ("state", "queued")))] == 1
    assert found[("workhorse_workers_live", ())] == 0


async def test_delete_asks_a_running_job_to_stop(live_worker: Live) -> None:
    client = live_worker.client(await live_worker.key("acme"))
    gate = live_worker.tmp / "never-opened"
    job_id = (await client.post("/jobs", json={"task": "gated", "args": [str(gate)]})).json()["id"]
    await running(client, job_id)
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["state"] == "running"
    assert response.json()["cancel_requested"] is True
    await wait_final(live_worker, [job_id])
    assert (await client.get(f"/jobs/{job_id}")).json()["state"] == "cancelled"
