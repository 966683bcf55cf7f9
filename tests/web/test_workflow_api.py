"""Workflows through the HTTP API over SQLite and PostgreSQL: ``GET /workflows/{id}``
lists the parts with their states and dependencies (for the key's tenant only), a job
shows its workflow and its pipeline stage, and ``POST /workflows/{id}/cancel`` cancels."""

from __future__ import annotations

from typing import Any

from workhorse import Workflow, WorkflowHandle, chain

from .conftest import Live


async def acme_chain(live: Live) -> WorkflowHandle:
    """A three-part chain of the tenant acme, enqueued straight through the library."""
    echo: Any = live.app.tasks["echo"]
    return await chain(
        echo.call(1), echo.partial(), echo.partial(), name="relay", tenant="acme"
    ).enqueue()


async def test_a_workflow_shows_its_parts_and_what_they_wait_for(live: Live) -> None:
    handle = await acme_chain(live)
    a, b, c = (job.id for job in handle.parts)
    client = live.client(await live.key("acme"))
    response = await client.get(f"/workflows/{handle.id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["name"], body["tenant"]) == (handle.id, "relay", "acme")
    assert (body["state"], body["on_failure"]) == ("active", "fail")
    assert [(p["id"], p["state"], p["depends_on"]) for p in body["parts"]] == [
        (a, "queued", []),
        (b, "blocked", [a]),
        (c, "blocked", [b]),
    ]
    assert body["counts"]["blocked"] == 2
    job = (await client.get(f"/jobs/{b}")).json()
    assert job["workflow_id"] == handle.id
    assert job["stage"] is None


async def test_another_tenant_sees_no_workflow(live: Live) -> None:
    handle = await acme_chain(live)
    other = live.client(await live.key("globex"))
    assert (await other.get(f"/workflows/{handle.id}")).status_code == 404
    refused = await other.post(f"/workflows/{handle.id}/cancel")
    assert refused.status_code == 404
    assert refused.json()["error"]["message"] == f"workflow {handle.id} not found"
    assert (await handle.status()).value == "active"  # untouched
    admin = live.client(await live.key(admin=True))
    assert (await admin.get(f"/workflows/{handle.id}")).status_code == 200
    missing = await admin.get("/workflows/999999")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "workflow 999999 not found"
    assert (await admin.get("/workflows/0")).status_code == 422


async def test_cancel_a_workflow(live: Live) -> None:
    handle = await acme_chain(live)
    reader = live.client(await live.key("acme", read_only=True))
    assert (await reader.post(f"/workflows/{handle.id}/cancel")).status_code == 403
    writer = live.client(await live.key("acme"))
    response = await writer.post(f"/workflows/{handle.id}/cancel")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "cancelled"
    assert body["cancelled_at"] is not None
    assert {p["state"] for p in body["parts"]} == {"cancelled"}


async def test_a_pipeline_job_shows_its_stage(live: Live) -> None:
    echo: Any = live.app.tasks["echo"]
    add: Any = live.app.tasks["add"]
    pipe = live.app.pipeline("pipe", stages=[("first", echo), ("second", add)])
    job = await pipe.options(tenant="acme").enqueue(5)
    client = live.client(await live.key("acme"))
    body = (await client.get(f"/jobs/{job.id}")).json()
    assert body["stage"] == "first"
    assert body["workflow_id"] is None
    listed = (await client.get("/jobs")).json()["jobs"]
    assert [j["stage"] for j in listed] == ["first"]


async def test_a_workflow_part_waiting_on_a_stored_job(live: Live) -> None:
    echo: Any = live.app.tasks["echo"]
    first = await echo.options(tenant="acme").enqueue(1)
    workflow = Workflow(tenant="acme")
    workflow.add(echo.call(2), after=[first])
    handle = await workflow.enqueue()
    client = live.client(await live.key("acme"))
    body = (await client.get(f"/workflows/{handle.id}")).json()
    assert [p["depends_on"] for p in body["parts"]] == [[first.id]]
