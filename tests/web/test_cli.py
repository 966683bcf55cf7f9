"""``workhorse keys`` and ``workhorse serve`` as real subprocesses on a SQLite file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from _polling import wait_until

APP_MODULE = """
from workhorse import Workhorse

app = Workhorse()


@app.task(name="double")
def double(value: int) -> int:
    return 2 * value
"""


def workhorse(*args: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKHORSE_URL": url, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "workhorse", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def test_keys_create_list_revoke(tmp_path: Path, url: str) -> None:
    created = workhorse("keys", "create", "--tenant", "acme", "--name", "ci", cwd=tmp_path, url=url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("whk_")
    assert len(token) > 40
    assert "shown again" in created.stderr
    admin = workhorse("keys", "create", "--admin", "--read-only", "--json", cwd=tmp_path, url=url)
    admin_key = json.loads(admin.stdout)
    assert admin_key["admin"] is True
    assert admin_key["read_only"] is True
    assert admin_key["token"].startswith("whk_")

    listed = json.loads(workhorse("keys", "list", "--json", cwd=tmp_path, url=url).stdout)
    assert [(k["name"], k["tenant"], k["admin"]) for k in listed] == [
        ("ci", "acme", False),
        (None, None, True),
    ]
    assert all("key_hash" not in k and "token" not in k for k in listed)
    database = (tmp_path / "jobs.db").read_bytes()
    assert token.encode() not in database
    table = workhorse("keys", "list", cwd=tmp_path, url=url)
    assert "tenant acme" in table.stdout
    assert "read-only" in table.stdout

    key_id = listed[0]["id"]
    revoked = workhorse("keys", "revoke", key_id, cwd=tmp_path, url=url)
    assert revoked.returncode == 0, revoked.stderr
    again = workhorse("keys", "revoke", key_id, cwd=tmp_path, url=url)
    assert again.returncode == 2
    assert f"no live API key with id '{key_id}'" in again.stderr
    remaining = json.loads(workhorse("keys", "list", "--json", cwd=tmp_path, url=url).stdout)
    assert [k["id"] for k in remaining] == [admin_key["id"]]
    every = json.loads(workhorse("keys", "list", "--all", "--json", cwd=tmp_path, url=url).stdout)
    assert len(every) == 2


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create"),
        ("keys", "create", "--tenant", "acme", "--admin"),
        ("keys", "create", "--tenant", "bad tenant!"),
    ],
)
def test_keys_create_refuses_an_unclear_scope(tmp_path: Path, url: str, args: Any) -> None:
    result = workhorse(*args, cwd=tmp_path, url=url)
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert result.stdout == ""


@pytest.mark.slow
def test_serve_with_a_worker_runs_posted_jobs_and_stops_on_sigterm(
    tmp_path: Path, url: str
) -> None:
    (tmp_path / "myjobs.py").write_text(APP_MODULE)
    token = workhorse("keys", "create", "--tenant", "acme", cwd=tmp_path, url=url).stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "workhorse", "serve", "myjobs:app", "--port", str(port),
         "--with-worker", "--concurrency", "2", "--log-level", "warning"],
        cwd=tmp_path,
        env={**os.environ, "WORKHORSE_URL": url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=30, what="workhorse serve to be ready", every=0.05)
        auth = {"Authorization": f"Bearer {token}"}
        made = httpx.post(f"{base}/jobs", json={"task": "double", "args": [21]}, headers=auth)
        assert made.status_code == 201, made.text
        job_url = f"{base}/jobs/{made.json()['id']}"
        wait_until(
            lambda: httpx.get(job_url, headers=auth).json()["state"] == "completed",
            timeout=30,
            what="the job to complete",
        )
        assert httpx.get(job_url, headers=auth).json()["result"] == 42
        assert httpx.get(f"{base}/").status_code in (200, 307)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()
