"""Dashboard sessions over real HTTP: login by API key, the cookie's flags, CSRF and
Origin checks on every cookie-authenticated write (trusted origins behind a proxy
included), revocation, logout."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from workhorse.errors import ConfigurationError
from workhorse.web import list_api_keys, revoke_api_key
from workhorse.web.origins import TRUSTED_ORIGINS_ENV, Origins
from workhorse.web.sessions import SESSION_COOKIE

from ._server import ServerProcess
from .conftest import Live, serve
from .test_cli import APP_MODULE, workhorse


async def login(live: Live, token: str) -> tuple[httpx.AsyncClient, str]:
    """A client holding a session cookie, and the session's CSRF token."""
    client = live.client(Origin=live.url)
    response = await client.post("/dashboard/login", json={"api_key": token})
    assert response.status_code == 200, response.text
    return client, response.json()["csrf"]


async def test_login_sets_a_strict_http_only_cookie(live_sqlite: Live) -> None:
    token = await live_sqlite.key("acme", read_only=True)
    client = live_sqlite.client(Origin=live_sqlite.url)
    response = await client.post("/dashboard/login", json={"api_key": token})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == "acme"
    assert body["read_only"] is True
    assert len(body["csrf"]) >= 20
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert token not in cookie
    session = await client.get("/dashboard/session")
    assert session.json()["csrf"] == body["csrf"]


async def test_login_refuses_bad_keys_and_cross_site_posts(live_sqlite: Live) -> None:
    token = await live_sqlite.key("acme")
    bad = await live_sqlite.client(Origin=live_sqlite.url).post(
        "/dashboard/login", json={"api_key": "whk_wrong"}
    )
    assert bad.status_code == 401
    assert "set-cookie" not in bad.headers
    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        response = await live_sqlite.client(**headers).post(
            "/dashboard/login", json={"api_key": token}
        )
        assert response.status_code == 403, headers
        assert response.json()["error"]["type"] == "csrf"
        assert "set-cookie" not in response.headers
    no_session = await live_sqlite.client().get("/dashboard/session")
    assert no_session.status_code == 401


async def test_cookie_reads_are_scoped_and_writes_need_csrf_and_origin(live_sqlite: Live) -> None:
    client, csrf = await login(live_sqlite, await live_sqlite.key("acme"))
    await live_sqlite.enqueue("echo", tenant="globex")
    listed = await client.get("/jobs")
    assert listed.status_code == 200
    assert listed.json()["jobs"] == []
    body = {"task": "echo", "args": [1]}
    no_token = await client.post("/jobs", json=body)
    assert no_token.status_code == 403
    assert no_token.json()["error"]["type"] == "csrf"
    wrong_token = await client.post("/jobs", json=body, headers={"X-CSRF-Token": csrf + "x"})
    assert wrong_token.status_code == 403
    foreign = await client.post(
        "/jobs", json=body, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert foreign.json()["error"]["message"].startswith("cross-site request refused")
    store = await live_sqlite.app.backend()
    assert [j.tenant for j in await live_sqlite.app.list_jobs()] == ["globex"]
    made = await client.post("/jobs", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    assert made.json()["tenant"] == "acme"
    job_id = made.json()["id"]
    refused = await client.delete(f"/jobs/{job_id}")
    assert refused.status_code == 403
    cancelled = await client.delete(f"/jobs/{job_id}", headers={"X-CSRF-Token": csrf})
    assert cancelled.json()["state"] == "cancelled"
    assert (await store.job_get(job_id=job_id)) is not None


async def test_forged_and_revoked_sessions_are_401(live_sqlite: Live) -> None:
    client, _ = await login(live_sqlite, await live_sqlite.key("acme"))
    cookie = client.cookies[SESSION_COOKIE]
    payload, _, signature = cookie.partition(".")
    forged = live_sqlite.client()
    forged.cookies.set(SESSION_COOKIE, payload + "." + signature[::-1])
    assert (await forged.get("/jobs")).status_code == 401
    assert (await client.get("/jobs")).status_code == 200
    (key,) = await list_api_keys(live_sqlite.app)
    assert await revoke_api_key(live_sqlite.app, key.id)
    revoked = await client.get("/jobs")
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["error"]["message"]


async def test_logout_ends_the_session(live_sqlite: Live) -> None:
    client, csrf = await login(live_sqlite, await live_sqlite.key("acme"))
    refused = await client.post("/dashboard/logout")
    assert refused.status_code == 403
    response = await client.post("/dashboard/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/jobs")).status_code == 401


def replaying(live: Live, cookie: str, csrf: str) -> httpx.AsyncClient:
    """A client sending a copy of a session cookie and its CSRF token."""
    client = live.client(Origin=live.url, **{"X-CSRF-Token": csrf})
    client.cookies.set(SESSION_COOKIE, cookie)
    return client


async def test_a_logged_out_cookie_replayed_is_refused(live_sqlite: Live) -> None:
    token = await live_sqlite.key("acme")
    client, csrf = await login(live_sqlite, token)
    other, other_csrf = await login(live_sqlite, token)
    copy = replaying(live_sqlite, client.cookies[SESSION_COOKIE], csrf)
    job = {"task": "echo", "args": [1]}
    assert (await copy.get("/jobs")).status_code == 200
    assert (await copy.post("/jobs", json=job)).status_code == 201

    logout = await client.post("/dashboard/logout", headers={"X-CSRF-Token": csrf})
    assert logout.status_code == 204
    for answer in (
        await copy.get("/jobs"),
        await copy.post("/jobs", json=job),
        await copy.get("/dashboard/session"),
        await copy.post("/dashboard/logout"),
    ):
        assert answer.status_code == 401, answer.text
    assert len(await live_sqlite.app.list_jobs()) == 1
    # Logging out ends that session only: the key's other session lives on...
    other_copy = replaying(live_sqlite, other.cookies[SESSION_COOKIE], other_csrf)
    assert (await other_copy.get("/jobs")).status_code == 200
    # ...until the key is revoked, which ends every session of the key.
    (key,) = await list_api_keys(live_sqlite.app)
    assert await revoke_api_key(live_sqlite.app, key.id)
    assert (await other_copy.get("/jobs")).status_code == 401
    assert (await other_copy.post("/jobs", json=job)).status_code == 401
    assert (await other_copy.get("/dashboard/session")).status_code == 401
    assert len(await live_sqlite.app.list_jobs()) == 1


async def test_dashboard_page_forbids_inline_code(live_sqlite: Live) -> None:
    client = live_sqlite.client()
    page = await client.get("/dashboard")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script src="/dashboard/static/app.js" defer></script>' in page.text
    assert page.text.count("<script") == 1
    script = await client.get("/dashboard/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
    assert (await client.get("/dashboard/static/../api.py")).status_code == 404
    assert (await client.get("/dashboard/static/index.html")).status_code == 404


PROXY_ORIGIN = "https://jobs.example.com"
"""The browser's origin when a proxy in front rewrites Host to the server's address."""


@pytest.fixture
async def behind_proxy(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    """A server told that its dashboard is also reached as ``PROXY_ORIGIN``."""
    async for served in serve(sqlite_url, tmp_path, trusted_origins=[PROXY_ORIGIN + "/"]):
        yield served


async def _dashboard_works_from(live: Live, **headers: str) -> bool:
    """Log in and enqueue through the cookie, sending ``headers`` (Origin, Referer)."""
    client = live.client(**headers)
    login = await client.post("/dashboard/login", json={"api_key": await live.key("acme")})
    if login.status_code != 200:
        assert login.status_code == 403, login.text
        return False
    csrf = {"X-CSRF-Token": login.json()["csrf"]}
    made = await client.post("/jobs", json={"task": "echo"}, headers=csrf)
    assert made.status_code == 201, made.text
    return True


async def test_a_proxy_origin_works_only_once_trusted(
    live_sqlite: Live, behind_proxy: Live
) -> None:
    assert not await _dashboard_works_from(live_sqlite, Origin=PROXY_ORIGIN)
    refused = await live_sqlite.client(Origin=PROXY_ORIGIN).post(
        "/dashboard/login", json={"api_key": await live_sqlite.key("acme")}
    )
    assert refused.json()["error"]["type"] == "csrf"

    assert await _dashboard_works_from(behind_proxy, Origin=PROXY_ORIGIN)
    assert await _dashboard_works_from(behind_proxy, Origin="HTTPS://Jobs.Example.com:443")
    assert await _dashboard_works_from(behind_proxy, Referer=f"{PROXY_ORIGIN}/dashboard")
    assert await _dashboard_works_from(behind_proxy, Origin=behind_proxy.url)
    for other in (
        "http://jobs.example.com",
        "https://jobs.example.com:8443",
        "https://evil.example",
    ):
        assert not await _dashboard_works_from(behind_proxy, Origin=other), other
    # A session opened through the proxy still refuses a write from elsewhere.
    client, csrf = await login(behind_proxy, await behind_proxy.key("acme"))
    foreign = await client.post(
        "/jobs",
        json={"task": "echo"},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert TRUSTED_ORIGINS_ENV in foreign.json()["error"]["message"]


def test_trusted_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRUSTED_ORIGINS_ENV, f" {PROXY_ORIGIN}/, http://10.0.0.5:8080 ")
    assert Origins().trusted == {PROXY_ORIGIN, "http://10.0.0.5:8080"}
    assert Origins([]).trusted == frozenset(), "an explicit setting wins"
    monkeypatch.delenv(TRUSTED_ORIGINS_ENV)
    assert Origins().trusted == frozenset()


@pytest.mark.parametrize(
    "origin",
    ["jobs.example.com", "https://jobs.example.com/dashboard", "ftp://jobs.example.com", "*",
     "https://user@jobs.example.com", "https://jobs.example.com?x=1", "https://:443"],
)  # fmt: skip
def test_a_malformed_trusted_origin_is_refused(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="must look like https://host"):
        Origins([origin])


@pytest.mark.slow
def test_serve_takes_trusted_origins(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "myjobs.py").write_text(APP_MODULE)
    env = {"WORKHORSE_URL": sqlite_url}
    created = workhorse("keys", "create", "--tenant", "acme", cwd=tmp_path, url=sqlite_url)
    token = created.stdout.strip()
    bad = workhorse("serve", "myjobs:app", "--trusted-origin", "jobs.example.com", cwd=tmp_path,
                    url=sqlite_url)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: trusted origin 'jobs.example.com' must look like")
    trusted = ["--trusted-origin", "https://a.example", "--trusted-origin", PROXY_ORIGIN]
    command = [sys.executable, "-m", "workhorse", "serve", "myjobs:app", *trusted]
    server = ServerProcess(command, cwd=tmp_path, env=env, log=tmp_path / "serve.log").start()
    try:
        for origin, status in ((PROXY_ORIGIN, 200), ("https://evil.example", 403)):
            answer = httpx.post(
                f"{server.url}/dashboard/login", json={"api_key": token}, headers={"Origin": origin}
            )
            assert answer.status_code == status, answer.text
    finally:
        server.kill()
