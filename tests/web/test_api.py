"""The HTTP API through a real uvicorn server, over SQLite and PostgreSQL: every endpoint,
keys and tenants, and the error answers (401, 403, 404, 409, 413, 422, 500)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from workhorse.backends.base import JobFilter, WorkerInfo
from workhorse.web import revoke_api_key

from .conftest import Live

ENDPOINTS = [
    ("GET", "/jobs"),
    ("POST", "/jobs"),
    ("GET", "/jobs/1"),
    ("DELETE", "/jobs/1"),
    ("POST", "/jobs/1/retry"),
    ("GET", "/queues"),
    ("GET", "/workers"),
    ("GET", "/throughput"),
    ("GET", "/metrics"),
]


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a JSON error response."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def job_count(live: Live) -> int:
    store = await live.app.backend()
    return await store.job_count(filter=JobFilter())


# -- health ----------------------------------------------------------------------------


async def test_health_and_readiness_need_no_key(live: Live) -> None:
    client = live.client()
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"store": "ok"}}


async def test_openapi_and_docs_are_served(live: Live) -> None:
    client = live.client()
    schema = (await client.get("/openapi.json")).json()
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/retry", "/queues", "/workers"):
        assert path in schema["paths"]
    assert set(schema["paths"]["/jobs/{job_id}"]) == {"get", "delete"}
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_no_key_is_401(live: Live, method: str, path: str) -> None:
    response = await live.client().request(method, path, json={"task": "echo"})
    assert response.status_code == 401
    assert error_of(response)["type"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_malformed_and_revoked_keys_are_401(live: Live) -> None:
    token = await live.key("acme")
    good = await live.client(token).get("/jobs")
    assert good.status_code == 200
    for headers in (
        {"Authorization": "Bearer whk_not-a-real-key"},
        {"Authorization": "Bearer " + token[:-1]},
        {"Authorization": "Basic " + token},
        {"Authorization": "Bearer"},
        {"X-API-Key": "nope"},
    ):
        response = await live.client(**headers).get("/jobs")
        assert response.status_code == 401, headers
        assert error_of(response)["type"] == "unauthorized"
    keys = await live.app.backend()
    (record,) = await keys.api_key_list()
    assert await revoke_api_key(live.app, record.id)
    revoked = await live.client(token).get("/jobs")
    assert revoked.status_code == 401
    assert error_of(revoked)["message"] == "invalid or revoked API key"
    assert (await live.client(**{"X-API-Key": token}).get("/jobs")).status_code == 401


async def test_x_api_key_header_is_accepted(live: Live) -> None:
    token = await live.key("acme")
    response = await live.client(**{"X-API-Key": token}).get("/jobs")
    assert response.status_code == 200


# -- POST /jobs --------------------------------------------------------------------------


async def test_enqueue_returns_201_with_the_job_stamped_with_the_key_tenant(live: Live) -> None:
    client = live.client(await live.key("acme"))
    response = await client.post(
        "/jobs", json={"task": "add", "args": [2, 3], "labels": {"source": "test"}}
    )
    assert response.status_code == 201
    job = response.json()
    assert job["task"] == "add"
    assert job["args"] == [2, 3]
    assert job["state"] == "queued"
    assert job["tenant"] == "acme"
    assert job["labels"] == {"source": "test"}
    assert job["queue"] == "default"
    fetched = await client.get(f"/jobs/{job['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == job
    stored = await live.app.get_job(job["id"])
    assert stored.tenant == "acme"
    assert stored.args == [2, 3]


async def test_enqueue_options_are_applied(live: Live) -> None:
    client = live.client(await live.key("acme"))
    later = datetime.now(UTC) + timedelta(hours=1)
    delayed = await client.post(
        "/jobs",
        json={
            "task": "echo",
            "kwargs": {"value": {"nested": [1, "two", None, True]}},
            "queue": "mail.outbound",
            "priority": 7,
            "delay": 600,
            "max_attempts": 5,
            "timeout": 30,
        },
    )
    assert delayed.status_code == 201, delayed.text
    job = delayed.json()
    assert (job["queue"], job["priority"], job["state"]) == ("mail.outbound", 7, "scheduled")
    assert (job["max_attempts"], job["timeout"]) == (5, 30)
    assert job["kwargs"] == {"value": {"nested": [1, "two", None, True]}}
    run_at = datetime.fromisoformat(job["run_at"])
    assert timedelta(minutes=9) < run_at - datetime.now(UTC) < timedelta(minutes=11)
    at_time = await client.post("/jobs", json={"task": "echo", "run_at": later.isoformat()})
    assert at_time.status_code == 201
    assert abs(datetime.fromisoformat(at_time.json()["run_at"]) - later) < timedelta(seconds=1)


async def test_unique_key_returns_the_live_job_with_200_per_tenant(live: Live) -> None:
    acme = live.client(await live.key("acme"))
    globex = live.client(await live.key("globex"))
    body = {"task": "echo", "args": [1], "unique_key": "report-42"}
    first = await acme.post("/jobs", json=body)
    again = await acme.post("/jobs", json=body)
    other = await globex.post("/jobs", json=body)
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    assert other.json()["tenant"] == "globex"
    assert await job_count(live) == 2


async def test_unknown_task_is_422_with_a_message_and_stores_nothing(live: Live) -> None:
    client = live.client(await live.key("acme"))
    response = await client.post("/jobs", json={"task": "no.such.task"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["type"] == "unknown_task"
    assert "no.such.task" in error["message"]
    assert await job_count(live) == 0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", "body"),
        (b'{"args": []}', "task"),
        (b'{"task": "echo", "surprise": 1}', "surprise"),
        (b'{"task": "echo", "queue": "Bad Queue!"}', "queue"),
        (b'{"task": "echo", "args": [NaN]}', "args"),
        (b'{"task": "echo", "args": [Infinity]}', "args"),
        (b'{"task": "echo", "args": ["nul\\u0000byte"]}', "args"),
        (b'{"task": "echo", "args": ' + b"[" * 40 + b"]" * 40 + b"}", "args"),
        (b'{"task": "echo", "delay": -1}', "delay"),
        (b'{"task": "echo", "delay": 5, "run_at": "2030-01-01T00:00:00Z"}', "delay"),
        (b'{"task": "echo", "run_at": "2030-01-01T00:00:00"}', "run_at"),
        (b'{"task": "echo", "priority": 99999999999}', "priority"),
        (b'{"task": "echo", "labels": {"k": 1}}', "labels"),
        (b'{"task": "echo\\u0000"}', "task"),
        (b"[]", "body"),
    ],
)
async def test_malformed_requests_are_422_and_store_nothing(
    live: Live, body: bytes, where: str
) -> None:
    client = live.client(await live.key("acme"))
    response = await client.post(
        "/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["type"] == "validation_error"
    assert where in error["message"] or any(where in map(str, d["loc"]) for d in error["details"])
    assert await job_count(live) == 0


async def test_oversized_payload_is_413_and_stores_nothing(live: Live) -> None:
    client = live.client(await live.key("acme"))
    big = {"task": "echo", "args": ["x" * (300 * 1024)]}
    declared = await client.post("/jobs", json=big)
    assert declared.status_code == 413
    assert error_of(declared)["type"] == "request_entity_too_large"

    async def chunks() -> Any:  # no Content-Length: the streamed size is what counts
        yield b'{"task": "echo", "args": ["'
        for _ in range(40):
            yield b"y" * 8192
        yield b'"]}'

    streamed = await client.post(
        "/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert await job_count(live) == 0
    small = await client.post("/jobs", json={"task": "echo", "args": ["x" * 1000]})
    assert small.status_code == 201


# -- GET /jobs ---------------------------------------------------------------------------


async def test_list_filters(live: Live) -> None:
    client = live.client(await live.key("acme"))
    made = []
    for task, queue, labels in [
        ("echo", "default", {"env": "prod"}),
        ("add", "default", {"env": "dev"}),
        ("echo", "reports", {"env": "prod"}),
    ]:
        body = {"task": task, "queue": queue, "labels": labels, "args": [1, 2]}
        made.append((await client.post("/jobs", json=body)).json()["id"])
    cancelled = await client.delete(f"/jobs/{made[1]}")
    assert cancelled.json()["state"] == "cancelled"

    async def ids(**params: Any) -> list[int]:
        response = await client.get("/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["jobs"]]

    assert await ids() == made[::-1]
    assert await ids(queue="reports") == [made[2]]
    assert await ids(task="add") == [made[1]]
    assert await ids(label="env:prod") == [made[2], made[0]]
    assert await ids(status="cancelled") == [made[1]]
    assert await ids(status=["queued", "cancelled"]) == made[::-1]
    assert await ids(created_after=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()) == []
    assert (
        await ids(created_before=(datetime.now(UTC) + timedelta(minutes=1)).isoformat())
        == (made[::-1])
    )
    for bad in ({"limit": 0}, {"limit": 1001}, {"status": "nope"}, {"label": "nokey"},
                {"queue": "UPPER"}, {"before_id": 0}, {"created_after": "yesterday"}):  # fmt: skip
        response = await client.get("/jobs", params=bad)
        assert response.status_code == 422, bad
        assert error_of(response)["type"] == "validation_error"


async def test_cursor_pagination_walks_every_job_once(live: Live) -> None:
    client = live.client(await live.key("acme"))
    made = [
        (await client.post("/jobs", json={"task": "echo", "args": [i]})).json()["id"]
        for i in range(7)
    ]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["before_id"] = cursor
        page = (await client.get("/jobs", params=params)).json()
        seen.extend(job["id"] for job in page["jobs"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    assert pages == 3


# -- DELETE and retry ----------------------------------------------------------------------


async def test_delete_cancels_a_live_job_then_deletes_the_final_one(live: Live) -> None:
    client = live.client(await live.key("acme"))
    job_id = (await client.post("/jobs", json={"task": "echo", "delay": 3600})).json()["id"]
    cancelled = await client.delete(f"/jobs/{job_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    deleted = await client.delete(f"/jobs/{job_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await client.get(f"/jobs/{job_id}")
    assert gone.status_code == 404
    assert error_of(gone)["type"] == "not_found"
    assert (await client.delete(f"/jobs/{job_id}")).status_code == 404


async def test_retry_sends_a_cancelled_job_back_and_refuses_a_live_one(live: Live) -> None:
    client = live.client(await live.key("acme"))
    job_id = (await client.post("/jobs", json={"task": "echo"})).json()["id"]
    refused = await client.post(f"/jobs/{job_id}/retry")
    assert refused.status_code == 409
    assert error_of(refused)["type"] == "conflict"
    await client.delete(f"/jobs/{job_id}")
    retried = await client.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "queued"


async def test_unknown_and_out_of_range_ids(live: Live) -> None:
    client = live.client(await live.key("acme"))
    for method, path in [("GET", "/jobs/{}"), ("DELETE", "/jobs/{}"), ("POST", "/jobs/{}/retry")]:
        missing = await client.request(method, path.format(123456))
        assert missing.status_code == 404
        assert error_of(missing) == {"type": "not_found", "message": "job 123456 not found"}
        for bad in ("0", "-1", "abc", str(2**64)):
            invalid = await client.request(method, path.format(bad))
            assert invalid.status_code == 422, (method, bad)


async def test_a_corrupt_job_answers_a_typed_500_naming_the_column(live_sqlite: Live) -> None:
    acme = live_sqlite.client(await live_sqlite.key("acme"))
    job_id = await live_sqlite.enqueue("echo", args=[1], tenant="acme", delay=3600)
    path = live_sqlite.app.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")  # as a torn write would
        conn.execute("UPDATE workhorse_jobs SET priority = 'high' WHERE id = ?", (job_id,))
    conn.close()
    response = await acme.get(f"/jobs/{job_id}")
    assert response.status_code == 500
    error = error_of(response)
    assert error["type"] == "corrupt_job"
    assert f"job {job_id}" in error["message"]
    assert "'priority'" in error["message"]
    # Another tenant still learns nothing about it.
    globex = live_sqlite.client(await live_sqlite.key("globex"))
    assert (await globex.get(f"/jobs/{job_id}")).status_code == 404
    # The listing leaves it out rather than fail.
    listed = await acme.get("/jobs")
    assert listed.status_code == 200
    assert listed.json()["jobs"] == []


# -- tenants and key kinds ---------------------------------------------------------------


async def test_a_tenant_cannot_read_list_cancel_or_retry_another_tenants_job(live: Live) -> None:
    acme = live.client(await live.key("acme"))
    globex = live.client(await live.key("globex"))
    theirs = (await globex.post("/jobs", json={"task": "echo", "args": ["secret"]})).json()
    cancelled = (await globex.post("/jobs", json={"task": "echo"})).json()["id"]
    await globex.delete(f"/jobs/{cancelled}")
    for job_id in (theirs["id"], cancelled):
        for method, path in [
            ("GET", f"/jobs/{job_id}"),
            ("DELETE", f"/jobs/{job_id}"),
            ("POST", f"/jobs/{job_id}/retry"),
        ]:
            response = await acme.request(method, path)
            assert response.status_code == 404, (method, path)
            assert error_of(response) == {"type": "not_found", "message": f"job {job_id} not found"}
    assert (await acme.get("/jobs")).json() == {"jobs": [], "next_cursor": None}
    forced = await acme.get("/jobs", params={"tenant": "globex"})
    assert forced.json()["jobs"] == []
    assert (await acme.get("/queues")).json() == []
    still = await globex.get(f"/jobs/{theirs['id']}")
    assert still.json()["state"] == "queued"
    assert (await globex.get(f"/jobs/{cancelled}")).json()["state"] == "cancelled"


async def test_a_tenant_key_cannot_enqueue_for_another_tenant(live: Live) -> None:
    acme = live.client(await live.key("acme"))
    refused = await acme.post("/jobs", json={"task": "echo", "tenant": "globex"})
    assert refused.status_code == 403
    own = await acme.post("/jobs", json={"task": "echo", "tenant": "acme"})
    assert own.status_code == 201
    assert await job_count(live) == 1


async def test_read_only_key_reads_but_cannot_write(live: Live) -> None:
    writer = live.client(await live.key("acme"))
    reader = live.client(await live.key("acme", read_only=True))
    job_id = (await writer.post("/jobs", json={"task": "echo"})).json()["id"]
    assert (await reader.get(f"/jobs/{job_id}")).status_code == 200
    assert [j["id"] for j in (await reader.get("/jobs")).json()["jobs"]] == [job_id]
    for method, path, body in [
        ("POST", "/jobs", {"task": "echo"}),
        ("DELETE", f"/jobs/{job_id}", None),
        ("POST", f"/jobs/{job_id}/retry", None),
    ]:
        response = await reader.request(method, path, json=body)
        assert response.status_code == 403, (method, path)
        assert error_of(response)["type"] == "forbidden"
    assert (await live.app.get_job(job_id)).state.value == "queued"
    assert await job_count(live) == 1


async def test_admin_key_sees_and_filters_every_tenant(live: Live) -> None:
    admin = live.client(await live.key(admin=True))
    acme = live.client(await live.key("acme"))
    mine = (await acme.post("/jobs", json={"task": "echo"})).json()["id"]
    theirs = (await admin.post("/jobs", json={"task": "echo", "tenant": "globex"})).json()
    untenanted = (await admin.post("/jobs", json={"task": "echo"})).json()
    assert theirs["tenant"] == "globex"
    assert untenanted["tenant"] is None
    every = [j["id"] for j in (await admin.get("/jobs")).json()["jobs"]]
    assert every == [untenanted["id"], theirs["id"], mine]
    only = (await admin.get("/jobs", params={"tenant": "acme"})).json()["jobs"]
    assert [j["id"] for j in only] == [mine]
    assert (await admin.get(f"/jobs/{mine}")).status_code == 200
    assert (await admin.delete(f"/jobs/{mine}")).json()["state"] == "cancelled"
    queues = (await admin.get("/queues")).json()
    assert queues[0]["counts"]["queued"] == 2
    assert queues[0]["counts"]["cancelled"] == 1
    assert (await admin.get("/metrics")).status_code == 200
    forbidden = await acme.get("/metrics")
    assert forbidden.status_code == 403
    assert error_of(forbidden)["type"] == "forbidden"


# -- stats -------------------------------------------------------------------------------


async def test_queue_stats_count_per_state_for_the_tenant(live: Live) -> None:
    client = live.client(await live.key("acme"))
    for body in ({"task": "echo"}, {"task": "echo"}, {"task": "echo", "delay": 60},
                 {"task": "echo", "queue": "other"}):  # fmt: skip
        await client.post("/jobs", json=body)
    await live.enqueue("echo", tenant="globex")
    queues = {q["queue"]: q for q in (await client.get("/queues")).json()}
    assert set(queues) == {"default", "other"}
    default = queues["default"]
    assert default["counts"]["queued"] == 2
    assert default["counts"]["scheduled"] == 1
    assert default["total"] == 3
    assert default["oldest_queued_age_seconds"] >= 0
    assert queues["other"]["total"] == 1


async def test_workers_are_listed_with_heartbeat_age(live: Live) -> None:
    client = live.client(await live.key("acme"))
    assert (await client.get("/workers")).json() == []
    store = await live.app.backend()
    await store.worker_register(
        worker=WorkerInfo(id="w-1", hostname="box", pid=42, queues=("a", "b"), concurrency=3)
    )
    (worker,) = (await client.get("/workers")).json()
    assert worker["id"] == "w-1"
    assert worker["queues"] == ["a", "b"]
    assert worker["concurrency"] == 3
    assert 0 <= worker["heartbeat_age_seconds"] < 60


async def test_readyz_reports_an_unreachable_store(tmp_path: Any) -> None:
    from workhorse import Workhorse
    from workhorse.web import create_app

    from ._server import ServerThread

    app = Workhorse("postgresql://postgres@127.0.0.1:1/none")
    server = ServerThread(create_app(app)).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["store"].startswith("unreachable")
    finally:
        server.stop()


async def test_unknown_routes_answer_in_the_same_error_shape(live: Live) -> None:
    client = live.client(await live.key("acme"))
    missing = await client.get("/no/such/route")
    assert missing.status_code == 404
    assert error_of(missing)["type"] == "not_found"
    wrong_method = await client.put("/jobs")
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)["type"] == "method_not_allowed"
