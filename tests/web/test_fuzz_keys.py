"""The OpenAPI schema fuzzed by schemathesis with every kind of key, against a real server
over SQLite (``test_fuzz.py`` covers a valid tenant key and no key at all):

- invalid credentials (an unknown key, a revoked one, the wrong scheme, an empty or
  oversized token, a bad ``X-API-Key``): every protected operation answers 401 with a
  ``WWW-Authenticate`` challenge, public ones never fail, and nothing is stored;
- a read-only key: no write to a job succeeds (403), nothing is stored;
- an admin key: no generated request makes a 500.

Errors keep their JSON shape throughout, and no answer echoes the credential sent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from workhorse.backends import open_backend
from workhorse.backends.base import JobFilter
from workhorse.web import create_api_key, create_app, revoke_api_key

from ._server import ServerThread
from ._tasks import make_app

pytestmark = pytest.mark.slow

PUBLIC = {"/healthz", "/readyz", "/dashboard/login"}
COOKIE_ONLY = {"/dashboard/session"}
"""Authenticates by the dashboard's session cookie alone: a 401 without a Bearer challenge."""
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
EXAMPLES = 30
UNKNOWN = "whk_" + "u" * 43


@dataclass
class Target:
    url: str
    store_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def bad_credentials(self) -> dict[str, dict[str, str]]:
        """Header sets that must all be refused."""
        return {
            "unknown key": {"Authorization": f"Bearer {UNKNOWN}"},
            "revoked key": {"Authorization": f"Bearer {self.tokens['revoked']}"},
            "basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
            "empty bearer": {"Authorization": "Bearer "},
            "oversized token": {"Authorization": "Bearer whk_" + "a" * 4000},
            "bad X-API-Key": {"X-API-Key": "not-a-key"},
            "key without prefix": {"X-API-Key": self.tokens["revoked"].removeprefix("whk_")},
        }


async def _prepare(store_url: str) -> dict[str, str]:
    app = make_app(store_url)
    try:
        revoked = await create_api_key(app, tenant="acme")
        assert await revoke_api_key(app, revoked.record.id)
        return {
            "revoked": revoked.token,
            "read_only": (await create_api_key(app, tenant="acme", read_only=True)).token,
            "admin": (await create_api_key(app, admin=True)).token,
        }
    finally:
        await app.aclose()


async def _stored_jobs(store_url: str) -> int:
    store = open_backend(store_url)
    await store.connect()
    try:
        return await store.job_count(filter=JobFilter())
    finally:
        await store.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    store_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    tokens = asyncio.run(_prepare(store_url))
    server = ServerThread(
        create_app(make_app(store_url), session_secret="fuzz-keys-secret-1")
    ).start()
    try:
        yield Target(server.url, store_url, tokens)
    finally:
        server.stop()


@pytest.fixture
def untouched(target: Target) -> Iterator[Target]:
    """The target; the test must leave its store without a job."""
    yield target
    assert asyncio.run(_stored_jobs(target.store_url)) == 0, "a refused request stored a job"


schema = schemathesis.openapi.from_dict(create_app(make_app("sqlite:///unused.db")).openapi())
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def _check_shape(response: Any, sent: str | None = None) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert body["error"]["message"]
    if sent:
        assert sent not in response.text, "the answer echoes the credential"


def _declared(case: Any) -> bool:
    # schemathesis also tries methods the path does not declare (405 then)
    return bool(case.method.upper() == case.operation.method.upper())


_ROTATION = itertools.count()


@schema.parametrize()
@FUZZ
def test_invalid_keys_get_401_and_store_nothing(case: Any, untouched: Target) -> None:
    # One bad credential per generated case, in turn: each kind meets every operation.
    kinds = untouched.bad_credentials()
    what = list(kinds)[next(_ROTATION) % len(kinds)]
    headers = kinds[what]
    response = case.call(base_url=untouched.url, headers=headers)
    sent = next(iter(headers.values())).partition(" ")[2] or None
    _check_shape(response, sent if sent and len(sent) > 8 else None)
    if not _declared(case):
        assert response.status_code == 405, (what, case.method, case.formatted_path)
    elif case.path not in PUBLIC:
        assert response.status_code == 401, (what, case.method, case.formatted_path)
        if case.path not in COOKIE_ONLY:
            answered = {k.lower(): v for k, v in response.headers.items()}
            assert answered["www-authenticate"][0].startswith("Bearer"), case.path


@schema.parametrize()
@FUZZ
def test_a_read_only_key_never_writes(case: Any, untouched: Target) -> None:
    token = untouched.tokens["read_only"]
    response = case.call(base_url=untouched.url, headers={"Authorization": f"Bearer {token}"})
    _check_shape(response, token)
    # schemathesis' coverage phase also sends cases stripped of their credentials.
    sent = {k.lower(): v for k, v in response.request.headers.items()}.get("authorization")
    if sent is None:
        assert response.status_code in (401, 405) or case.path in PUBLIC
    elif _declared(case) and case.method.upper() in WRITES and case.path.startswith("/jobs"):
        # 403, or a 4xx for a request too broken to be a write at all: never a success.
        assert 400 <= response.status_code < 500, (case.method, case.formatted_path)


@schema.parametrize()
@FUZZ
def test_an_admin_key_gets_no_server_error(case: Any, target: Target) -> None:
    token = target.tokens["admin"]
    response = case.call(base_url=target.url, headers={"Authorization": f"Bearer {token}"})
    _check_shape(response, token)
