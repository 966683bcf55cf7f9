"""The dashboard shows hostile job data as text, in real headless Chromium: markup in a
job's task name, queue, tenant, labels, arguments, result, error (type, message and
traceback) and progress message, and in a worker's id, host and queues, never runs and
never becomes an element. ``test_dashboard.py`` covers arguments and results through a
tenant's session; this covers every other field, through an admin session that sees
every tenant.

The hostile rows are written straight into the store, past the API's validation, as a
buggy or malicious producer with database access could."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page, expect

from workhorse.backends.base import NewJob, Outcome, ProgressUpdate, WorkerInfo
from workhorse.jobs import JobError, JobState

from . import test_dashboard as dashboard
from .conftest import Live

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = dashboard.browser
page = dashboard.page

XSS = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
BREAKOUT = "\"'><svg onload=window.__xss=3>"
HOSTILE = XSS + BREAKOUT


async def _hostile_job(live: Live) -> int:
    store = await live.app.backend()
    (row,) = await store.job_insert_many(
        [
            NewJob(
                task=f"task{HOSTILE}",
                args=f"[{_json(HOSTILE)}]",
                queue=f"q{BREAKOUT}",
                tenant=f"t{HOSTILE}",
                labels={f"k{BREAKOUT}": HOSTILE},
            )
        ]
    )
    (job,) = await store.job_claim(
        worker_id=f"w{HOSTILE}", queues=None, limit=1, lease_seconds=60, job_ids=[row.id]
    )
    await store.job_set_progress(
        [ProgressUpdate(job_id=job.id, lease_token=job.lease_token, progress=40, message=HOSTILE)]
    )
    failed = Outcome(
        job_id=job.id,
        lease_token=job.lease_token,
        state=JobState.FAILED,
        result=_json(HOSTILE),
        error=JobError(type=f"E{BREAKOUT}", message=HOSTILE, traceback=f"Traceback\n{HOSTILE}"),
        progress=40,
        progress_message=HOSTILE,
    )
    assert await store.job_complete_many([failed]) == [True]
    await store.worker_register(
        worker=WorkerInfo(
            id=f"w{HOSTILE}", hostname=f"h{HOSTILE}", pid=7, queues=(f"q{BREAKOUT}",), concurrency=1
        )
    )
    return row.id


def _json(text: str) -> str:
    return json.dumps(text)


async def _no_injection(page: Page) -> None:
    assert await page.evaluate("window.__xss") is None, "hostile markup ran"
    injected = page.locator("#main-view script, #main-view img, #main-view svg[onload]")
    assert await injected.count() == 0, "hostile markup became an element"


async def test_every_field_of_a_hostile_job_shows_as_text(live: Live, page: Page) -> None:
    job_id = await _hostile_job(live)
    await page.goto(f"{live.url}/dashboard")
    await page.fill("#api-key", await live.key(admin=True))
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#main-view")).to_be_visible()

    row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
    await expect(row).to_contain_text(f"task{HOSTILE}", timeout=dashboard.WAIT)
    await expect(row).to_contain_text(f"q{BREAKOUT}")
    await expect(row).to_contain_text(f"t{HOSTILE}")
    await expect(page.locator("#workers")).to_contain_text(f"w{HOSTILE}", timeout=dashboard.WAIT)
    await expect(page.locator("#queues")).to_contain_text(f"q{BREAKOUT}")
    await _no_injection(page)

    await row.click()
    detail = page.locator("#job-detail")
    await expect(detail).to_have_attribute("data-job-id", str(job_id))
    await expect(page.locator("#detail-args")).to_contain_text(_json(HOSTILE)[1:-1])
    await expect(page.locator("#detail-error")).to_contain_text(f"E{BREAKOUT}: {HOSTILE}")
    await expect(page.locator("#detail-traceback")).to_contain_text(HOSTILE)
    await expect(page.locator("#detail-fields")).to_contain_text(f"k{BREAKOUT}:{HOSTILE}")
    await expect(page.locator("#detail-progress-text")).to_contain_text(HOSTILE)
    await _no_injection(page)
