"""``workhorse schedules`` and ``workhorse webhooks`` as real subprocesses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from workhorse.backends.base import NewJob, WebhookDelivery

from ._support import cli_env, workhorse
from .conftest import Store

SCHEDULES_APP = "tests.acceptance.feature_apps:schedules"


async def test_schedules_lists_next_run_and_last_tick(store: Store) -> None:
    tick = datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC)
    job_id = await store.backend.cron_claim_tick(
        name="every-second", tick_at=tick, job=NewJob(task="x")
    )
    before = datetime.now(UTC)
    table = store.cli("schedules", "--app", SCHEDULES_APP)
    as_json = store.cli("schedules", "--app", SCHEDULES_APP, "--json")
    assert table.code == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "TASK", "QUEUE", "TRIGGER"]
    assert row.split()[:5] == [
        "every-second",
        "tests.acceptance.feature_apps.every_second",
        "default",
        "every",
        "1s",
    ]
    assert row.split()[-1] == str(job_id)
    (listed,) = json.loads(as_json.stdout)
    assert listed["trigger"] == "every 1s"
    assert datetime.fromisoformat(listed["last_tick_at"]) == tick
    assert datetime.fromisoformat(listed["next_run_at"]) > before


def test_schedules_needs_the_app(store: Store) -> None:
    result = store.cli("schedules")
    assert result.code == 2
    assert "needs your app" in result.error_line()


def test_schedules_before_any_store_exists(tmp_path: Path) -> None:
    folder = tmp_path
    env = cli_env(f"sqlite:///{folder / 'missing.db'}")
    result = workhorse("schedules", "--app", SCHEDULES_APP, "--json", cwd=folder, env=env)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)[0]["last_tick_at"] is None
    assert not (folder / "missing.db").exists()


async def test_a_secret_is_printed_once_and_stored(store: Store) -> None:
    created = store.cli("webhooks", "secret", "--tenant", "acme")
    assert created.code == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    assert "not shown again" in created.stderr
    assert secret not in created.stderr
    assert await store.backend.webhook_secret_get(tenant="acme") == secret
    replaced = store.cli("webhooks", "secret", "--tenant", "acme").stdout.strip()
    assert replaced != secret
    assert await store.backend.webhook_secret_get(tenant="acme") == replaced


async def test_deliveries_of_a_job(store: Store) -> None:
    await store.backend.webhook_delivery_record(
        delivery=WebhookDelivery(
            job_id=5, delivery_job_id=6, url="http://127.0.0.1:9/h", attempt=1, error="refused"
        )
    )
    table = store.cli("webhooks", "deliveries", "5")
    as_json = json.loads(store.cli("webhooks", "deliveries", "5", "--json").stdout)
    none = store.cli("webhooks", "deliveries", "7")
    assert table.code == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:5] == [
        "1",
        "6",
        "http://127.0.0.1:9/h",
        "-",
        "refused",
    ]
    assert [(d["attempt"], d["error"]) for d in as_json] == [(1, "refused")]
    assert none.code == 0
    assert "no delivery attempts for job 7" in none.stderr
