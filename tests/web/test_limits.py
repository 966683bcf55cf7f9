"""Payload limits of the API, over SQLite and PostgreSQL (``test_api.py`` covers the size
limit and the common malformed bodies): hostile bodies that stay under the size limit
(too many values, too deep, too many labels, numbers no store can hold, broken text),
oversized bodies on every endpoint that reads one, and out-of-range paging. Each gets a
4xx with a JSON error, never a 500, and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from workhorse.backends.base import JobFilter
from workhorse.web.schemas import MAX_JSON_DEPTH, MAX_JSON_ITEMS, MAX_LABELS

from .conftest import Live


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_JOBS: dict[str, bytes] = {
    "too many values": b'{"task": "echo", "args": ['
    + b",".join([b"0"] * (MAX_JSON_ITEMS + 1))
    + b"]}",
    "too many keys": b'{"task": "echo", "kwargs": {'
    + b",".join(b'"k%d": 0' % i for i in range(MAX_JSON_ITEMS + 1))
    + b"}}",
    "objects too deep": b'{"task": "echo", "kwargs": '
    + b'{"a": ' * (MAX_JSON_DEPTH + 2)
    + b"0"
    + b"}" * (MAX_JSON_DEPTH + 2)
    + b"}",
    "parser-crushing depth": b'{"task": "echo", "args": ' + _deep(50_000) + b"}",
    "too many labels": b'{"task": "echo", "labels": {'
    + b",".join(b'"k%d": "v"' % i for i in range(MAX_LABELS + 1))
    + b"}}",
    "long label key": b'{"task": "echo", "labels": {"' + b"k" * 65 + b'": "v"}}',
    "long label value": b'{"task": "echo", "labels": {"k": "' + b"v" * 257 + b'"}}',
    "long task name": b'{"task": "' + b"t" * 256 + b'"}',
    "long unique key": b'{"task": "echo", "unique_key": "' + b"u" * 256 + b'"}',
    "integer beyond 64 bits": b'{"task": "echo", "args": [123456789012345678901234567890]}',
    "float overflowing to infinity": b'{"task": "echo", "args": [1e400]}',
    "lone surrogate": b'{"task": "echo", "args": ["\\ud800"]}',
    "invalid UTF-8": b'{"task": "echo", "args": ["\xff\xfe"]}',
    "fractional priority": b'{"task": "echo", "priority": 1.5}',
    "huge max_attempts": b'{"task": "echo", "max_attempts": 100000000}',
    "negative timeout": b'{"task": "echo", "timeout": -1}',
}


def _error(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def _stored(live: Live) -> int:
    store = await live.app.backend()
    return await store.job_count(filter=JobFilter())


@pytest.mark.parametrize("what", list(HOSTILE_JOBS))
async def test_hostile_jobs_are_refused_and_store_nothing(live: Live, what: str) -> None:
    body = HOSTILE_JOBS[what]
    assert len(body) < 256 * 1024, "under the size limit: the content is what is refused"
    client = live.client(await live.key("acme"))
    response = await client.post(
        "/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    _error(response)
    assert await _stored(live) == 0
    assert (await client.get("/healthz")).status_code == 200, "the server lives on"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/jobs/1/retry"), ("DELETE", "/jobs/1"), ("POST", "/dashboard/login")],
)
async def test_oversized_bodies_are_413_on_every_endpoint(
    live: Live, method: str, path: str
) -> None:
    await live.enqueue("echo", tenant="acme", delay=3600)
    client = live.client(await live.key("acme"), Origin=live.url)
    body = b'{"api_key": "' + b"x" * (300 * 1024) + b'"}'
    response = await client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, (method, path, response.text[:200])
    assert _error(response)["type"] == "request_entity_too_large"
    assert (await live.app.get_job(1)).state.value == "scheduled", "the job was not touched"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "1001"},
        {"limit": "0"},
        {"limit": "-1"},
        {"before_id": "0"},
        {"before_id": str(2**63)},
        {"status": "exploded"},
        {"queue": "Not A Queue"},
        {"created_after": "yesterday"},
        {"task": "t" * 256},
        {"label": "no-colon"},
    ],
)
async def test_paging_and_filters_out_of_range_are_422(live: Live, params: dict[str, str]) -> None:
    client = live.client(await live.key("acme"))
    response = await client.get("/jobs", params=params)
    assert response.status_code == 422, (params, response.text[:200])
    _error(response)
