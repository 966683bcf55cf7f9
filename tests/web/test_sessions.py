"""Dashboard sessions over real HTTP: login by API key, the cookie's flags, CSRF and
Origin checks on every cookie-authenticated write, revocation, logout."""

from __future__ import annotations

import httpx

from workhorse.web import list_api_keys, revoke_api_key
from workhorse.web.sessions import SESSION_COOKIE

from .conftest import Live


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
