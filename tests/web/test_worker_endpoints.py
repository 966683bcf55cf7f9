"""Endpoints that need jobs to run: a server with an in-process worker (``serve
--with-worker``): readiness, throughput and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Live


async def wait_final(live: Live, job_ids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for job_id in job_ids:
        left = max(0.1, deadline - time.monotonic())
        await live.app.job(job_id).wait(timeout=left)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


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
    throughput = (await client.get("/throughput", params={"minutes": 5})).json()
    assert throughput["bucket_seconds"] == 10
    assert len(throughput["buckets"]) == 30
    assert sum(b["completed"] for b in throughput["buckets"]) == 3
    assert sum(b["failed"] for b in throughput["buckets"]) == 1
    assert throughput["buckets"][-1]["completed"] + throughput["buckets"][-2]["completed"] >= 1


async def test_metrics_count_jobs_per_queue_state_and_task(live_worker: Live) -> None:
    client = live_worker.client(await live_worker.key("acme"))
    made = [
        (await client.post("/jobs", json={"task": "echo", "args": [i]})).json()["id"]
        for i in range(2)
    ]
    await client.post("/jobs", json={"task": "echo", "queue": "later", "delay": 3600})
    await wait_final(live_worker, made)
    admin = live_worker.client(await live_worker.key(admin=True, read_only=True))
    response = await admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    def value(name: str, **labels: Any) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("workhorse_queue_jobs", queue="default", state="completed") == 2
    assert value("workhorse_queue_jobs", queue="later", state="scheduled") == 1
    assert value("workhorse_queue_jobs", queue="default", state="running") == 0
    assert value("workhorse_queue_oldest_job_age_seconds", queue="default") == 0
    assert value("workhorse_jobs_enqueued_total", queue="default", task="echo") == 2
    assert value("workhorse_jobs_enqueued_total", queue="later", task="echo") == 1
    assert value("workhorse_workers_live") == 1
    assert value("workhorse_workers_registered") == 1
    assert value("workhorse_worker_attempts_total", outcome="completed") == 2
    assert value("workhorse_worker_attempts_total", outcome="failed") == 0
    assert value("workhorse_worker_running") == 0


async def test_oldest_job_age_grows_while_nothing_claims(live_sqlite: Live) -> None:
    admin = live_sqlite.client(await live_sqlite.key(admin=True))
    await admin.post("/jobs", json={"task": "echo", "queue": "stuck"})
    deadline = time.monotonic() + 10
    while True:
        found = samples((await admin.get("/metrics")).text)
        age = found[("workhorse_queue_oldest_job_age_seconds", (("queue", "stuck"),))]
        if age > 0:
            break
        assert time.monotonic() < deadline, "the oldest job's age never grew"
        await asyncio.sleep(0.05)
    assert found[("workhorse_queue_jobs", (("queue", "stuck"), ("state", "queued")))] == 1
    assert found[("workhorse_workers_live", ())] == 0


async def test_delete_asks_a_running_job_to_stop(live_worker: Live) -> None:
    client = live_worker.client(await live_worker.key("acme"))
    gate = live_worker.tmp / "never-opened"
    job_id = (await client.post("/jobs", json={"task": "gated", "args": [str(gate)]})).json()["id"]
    deadline = time.monotonic() + 30
    while (await client.get(f"/jobs/{job_id}")).json()["state"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        await asyncio.sleep(0.02)
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["state"] == "running"
    assert response.json()["cancel_requested"] is True
    await wait_final(live_worker, [job_id])
    assert (await client.get(f"/jobs/{job_id}")).json()["state"] == "cancelled"
