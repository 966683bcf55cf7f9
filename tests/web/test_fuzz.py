"""The OpenAPI schema fuzzed by schemathesis against a real server over SQLite: no
generated request makes a 500; errors keep their JSON shape; without a key, every
protected operation answers 401 and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from workhorse.web import create_api_key, create_app

from ._server import ServerThread
from ._tasks import make_app

pytestmark = pytest.mark.slow

PUBLIC = {"/healthz", "/readyz", "/dashboard/login"}
EXAMPLES = 60


@dataclass
class Target:
    url: str
    token: str


async def _issue(url: str) -> str:
    app = make_app(url)
    try:
        return (await create_api_key(app, tenant="acme")).token
    finally:
        await app.aclose()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    token = asyncio.run(_issue(url))
    app = make_app(url)
    server = ServerThread(create_app(app, session_secret="fuzz-session-secret-0123")).start()
    try:
        yield Target(server.url, token)
    finally:
        server.stop()


# The schema the server serves, built without a store (nothing connects until a request).
schema = schemathesis.openapi.from_dict(create_app(make_app("sqlite:///unused.db")).openapi())


def check_shape(response: Any) -> None:
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert body["error"]["message"]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_with_a_key(case: Any, target: Target) -> None:
    response = case.call(base_url=target.url, headers={"Authorization": f"Bearer {target.token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    check_shape(response)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_without_a_key_only_401(case: Any, target: Target) -> None:
    response = case.call(base_url=target.url)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if case.method.upper() != case.operation.method.upper():
        # schemathesis also tries methods the path does not declare
        assert response.status_code == 405, f"{case.method} {case.formatted_path}"
    elif case.path not in PUBLIC:
        assert response.status_code == 401, f"{case.method} {case.formatted_path}"
    check_shape(response)
