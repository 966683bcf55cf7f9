"""Secrets never leak: a whole run that handles a database password, API keys, a
webhook signing secret and the dashboard's session secret, through the CLI, a worker
process and ``workhorse serve``, all logging at DEBUG, and not one of its outputs, logs,
error messages, HTTP answers or dashboard pages shows a secret. The exceptions are the
commands that create one (``workhorse keys create``, ``workhorse webhooks secret``):
they print it once, on stdout.

The store is PostgreSQL, reached with a password in the URL, written both ways libpq
takes it (``user:password@host`` and ``?password=``); the server trusts local
connections, so any password works.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from cli._support import Result, WorkerProcess, cli_env, eventually, workhorse
from conftest import PG_URL, backend_url
from web._server import ServerProcess, ServerThread
from webhook_receiver import Receiver
from workhorse import Workhorse
from workhorse.backends import open_backend, redact_url
from workhorse.backends.base import JobFilter
from workhorse.errors import BackendUnavailableError
from workhorse.jobs import FINAL_STATES
from workhorse.web import create_app
from workhorse.webhooks import SIGNATURE_HEADER, verify_signature

from .apps import WEBHOOK_ENV

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

APP = "tests.security.apps:app"

DB_PASSWORD = f"db-pass-{uuid.uuid4().hex}"
SESSION_SECRET = f"session-secret-{uuid.uuid4().hex}"
WRONG_TOKEN = f"whk_{uuid.uuid4().hex}{uuid.uuid4().hex}"


def with_password(url: str, form: str, *, port: int | None = None) -> str:
    """``url`` carrying ``DB_PASSWORD`` in its user info or its query (and ``port``)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{port if port is not None else parts.port or 5432}"
    user = parts.username or "postgres"
    if form == "netloc":
        return urlunsplit(parts._replace(netloc=f"{user}:{DB_PASSWORD}@{host}"))
    query = f"{parts.query}&password={DB_PASSWORD}".lstrip("&")
    return urlunsplit(parts._replace(netloc=f"{user}@{host}", query=query))


@dataclass
class Run:
    """Everything a run printed or answered, and the secrets it handled."""

    tmp: Path
    url: str
    webhook: str
    secrets: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return cli_env(
            self.url,
            WORKHORSE_SESSION_SECRET=SESSION_SECRET,
            WORKHORSE_LOG_LEVEL="debug",
            **{WEBHOOK_ENV: self.webhook},
        )

    def cli(self, name: str, *args: str, url: str | None = None) -> Result:
        env = self.env if url is None else {**self.env, "WORKHORSE_URL": url}
        result = workhorse(*args, cwd=self.tmp, env=env)
        self.outputs[name] = f"{result.stdout}\n{result.stderr}"
        return result

    def answer(self, name: str, response: httpx.Response) -> httpx.Response:
        self.outputs[name] = f"{response.status_code} {response.headers} {response.text}"
        return response

    def create_webhook_secret(self, tenant: str) -> str:
        """``workhorse webhooks secret``: shown once on stdout and nowhere else."""
        created = workhorse("webhooks", "secret", "--tenant", tenant, cwd=self.tmp, env=self.env)
        assert created.code == 0, created.stderr
        secret = created.stdout.strip()
        assert secret
        assert secret not in created.stderr
        self.secrets["webhook secret"] = secret
        self.outputs["webhooks secret"] = created.stdout.replace(secret, "<secret>")
        self.outputs["webhooks secret (stderr)"] = created.stderr
        return secret

    def create_key(self, name: str, *flags: str) -> str:
        """``workhorse keys create``: its token, shown once on stdout and nowhere else."""
        created = workhorse("keys", "create", "--json", *flags, cwd=self.tmp, env=self.env)
        assert created.code == 0, created.stderr
        token = str(json.loads(created.stdout)["token"])
        assert created.stdout.count(token) == 1
        assert token not in created.stderr
        self.secrets[f"{name} token"] = token
        self.secrets[f"{name} token hash"] = hashlib.sha256(token.encode()).hexdigest()
        self.outputs[f"keys create {name}"] = created.stdout.replace(token, "<token>")
        self.outputs[f"keys create {name} (stderr)"] = created.stderr
        return token

    def leaks(self) -> list[str]:
        """``what: where`` for every secret found in any output."""
        return [
            f"{what}: {where}"
            for where, text in self.outputs.items()
            for what, secret in self.secrets.items()
            if secret in text
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that answers 204 and records what it was sent."""
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["netloc", "query"])
def run(request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str, receiver: Receiver) -> Run:
    url = with_password(backend_url("postgres", tmp_path, pg_schema), request.param)
    return Run(
        tmp_path,
        url,
        receiver.url,
        secrets={"database password": DB_PASSWORD, "session secret": SESSION_SECRET},
    )


async def _wait_all_final(url: str, total: int) -> None:
    store = open_backend(url)
    await store.connect()
    try:

        async def done() -> bool:
            return await store.job_count(filter=JobFilter(states=tuple(FINAL_STATES))) == total

        await eventually(done, timeout=60, what=f"{total} final jobs")
    finally:
        await store.close()


async def test_no_output_of_a_whole_run_shows_a_secret(run: Run, receiver: Receiver) -> None:
    assert run.cli("migrate", "migrate").code == 0
    tenant = run.create_key("tenant", "--tenant", "acme")
    admin = run.create_key("admin", "--admin")
    signing = run.create_webhook_secret("acme")
    run.cli("keys list", "keys", "list", "--all")
    run.cli("keys list json", "keys", "list", "--all", "--json")
    for name, task, args in [
        ("notify", "security.notify", "[1]"),
        ("boom", "security.boom", '["no"]'),
    ]:
        enqueued = run.cli(
            f"enqueue {name}", "enqueue", task, "--args", args, "--tenant", "acme", "--app", APP
        )
        assert enqueued.code == 0, enqueued.stderr
    assert run.cli("enqueue unknown", "enqueue", "security.gone", "--app", APP).code != 0

    worker = WorkerProcess(APP, cwd=run.tmp, env=run.env, log=run.tmp / "worker.log")
    try:
        await _wait_all_final(run.url, 3)  # the two jobs, and the webhook delivery
        for request in await receiver.wait_for(1):
            signature = {k.lower(): v for k, v in request.headers.items()}[SIGNATURE_HEADER.lower()]
            assert verify_signature(signing, request.body, signature), "signed with the secret"
        run.cli("worker status", "worker", "status")
        run.cli("jobs list", "jobs", "list")
        for job_id in (1, 2, 3):
            run.cli(f"jobs show {job_id}", "jobs", "show", str(job_id))
        run.cli("webhooks deliveries", "webhooks", "deliveries", "1", "--json")
        run.cli("queues", "queues")
    finally:
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        run.outputs["worker log"] = worker.output()
    run.outputs["webhook requests"] = "\n".join(
        f"{r.headers} {r.body!r}" for r in receiver.requests
    )

    server = ServerProcess(
        [sys.executable, "-m", "workhorse", "serve", APP, "--log-level", "debug"],
        cwd=run.tmp,
        env=run.env,
        log=run.tmp / "server.log",
    ).start()
    try:
        await _exercise_the_api(run, server.url, tenant, admin)
    finally:
        server.signal(signal.SIGTERM)
        server.wait(timeout=30)
        run.outputs["server log"] = server.log()

    unreachable = with_password(PG_URL, "netloc", port=1)
    failed = run.cli("unreachable store", "jobs", "list", url=unreachable)
    assert failed.code != 0
    run.cli("unreachable store --debug", "--debug", "jobs", "list", url=unreachable)
    run.outputs["repr of the app"] = repr(Workhorse(run.url))
    run.outputs["redacted url"] = redact_url(run.url)

    assert len(run.outputs) > 20
    assert run.leaks() == []


async def _exercise_the_api(run: Run, base: str, tenant: str, admin: str) -> None:
    origin = {"Origin": base}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        key = {"Authorization": f"Bearer {tenant}"}
        run.answer("GET /jobs", await client.get("/jobs", headers=key))
        run.answer("POST /jobs", await client.post("/jobs", headers=key, json={"task": "x"}))
        run.answer("GET /jobs/2", await client.get("/jobs/2", headers=key))
        run.answer("GET /jobs/1/webhooks", await client.get("/jobs/1/webhooks", headers=key))
        wrong = await client.get("/jobs", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
        assert wrong.status_code == 401
        assert WRONG_TOKEN not in wrong.text, "an error echoes the key it refused"
        run.answer("GET /jobs with a wrong key", wrong)
        admin_key = {"Authorization": f"Bearer {admin}"}
        run.answer("GET /metrics", await client.get("/metrics", headers=admin_key))
        run.answer("GET /workers", await client.get("/workers", headers=admin_key))
        run.answer("GET /readyz", await client.get("/readyz"))
        run.answer("GET /openapi.json", await client.get("/openapi.json"))
        login = await client.post("/dashboard/login", json={"api_key": tenant}, headers=origin)
        assert login.status_code == 200, login.text
        run.answer("POST /dashboard/login", login)
        run.answer("GET /dashboard", await client.get("/dashboard"))
        run.answer("GET /dashboard/session", await client.get("/dashboard/session"))
        run.answer("GET /jobs by session", await client.get("/jobs"))
        for asset in ("app.js", "index.html", "style.css"):
            run.answer(asset, await client.get(f"/dashboard/static/{asset}"))


async def test_an_unreachable_stores_errors_show_no_password(tmp_path: Path) -> None:
    for form in ("netloc", "query"):
        url = with_password(PG_URL, form, port=1)
        app = Workhorse(url, backend_options={"timeout": 1.0})
        server = ServerThread(create_app(app)).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "unreachable" in ready.text
            assert DB_PASSWORD not in ready.text, f"/readyz shows the password ({form})"
        finally:
            server.stop()
        with pytest.raises(BackendUnavailableError) as raised:
            await app.queue_stats()
        assert DB_PASSWORD not in str(raised.value), f"the error shows the password ({form})"
        assert DB_PASSWORD not in repr(app)
        await app.aclose()
