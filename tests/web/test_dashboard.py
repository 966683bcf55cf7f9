"""The dashboard in real headless Chromium (Debian's, driven by Playwright): log in with
an API key, watch a job go from queued to completed without a reload, cancel one, retry
a failed one, and see ``<script>`` in arguments shown as text."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from workhorse.backends.base import NewJob
from workhorse.jobs import JobState

from .conftest import Live

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_COPY_ENV = "WORKHORSE_DASHBOARD_SCREENSHOT"
"""Where to copy the final screenshot as well, for a human to look at (optional)."""
XSS = "<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>"
WAIT = 20_000  # ms
POLL_SECONDS = 1.0
"""The dashboard's pause between two refreshes (POLL_MS in app.js)."""
RATE_WINDOW = 5.0
"""Seconds over which the polling rate is measured."""


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and "401" not in message.text
            else None
        ),
    )
    yield opened
    await context.close()
    assert problems == []


async def log_in(page: Page, live: Live, token: str) -> None:
    await page.goto(f"{live.url}/dashboard")
    await expect(page.locator("#login-view")).to_be_visible()
    await page.fill("#api-key", "whk_wrong")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("invalid or revoked API key")
    await page.fill("#api-key", token)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#main-view")).to_be_visible()
    await expect(page.locator("#login-view")).to_be_hidden()
    await expect(page.locator("#who")).to_have_text("tenant acme")
    await expect(page.locator("#filter-tenant-label")).to_be_hidden()  # not an admin


async def assert_beside(table: Locator, panel: Locator) -> None:
    """``panel`` is open and covers no part of ``table``."""
    await expect(panel).to_be_visible()
    table_box, panel_box = await table.bounding_box(), await panel.bounding_box()
    assert table_box is not None
    assert panel_box is not None
    assert table_box["x"] + table_box["width"] <= panel_box["x"], (table_box, panel_box)


async def assert_retried_bar(page: Page) -> None:
    """The throughput chart shows one retried attempt: a bar of its own colour, named in
    its tooltip and in the legend."""
    bars = page.locator("#throughput g").filter(has=page.locator("title", has_text="1 retried"))
    await expect(bars).to_have_count(1)
    await expect(bars.locator("title")).to_have_text(
        re.compile(r"^.+: \d+ completed, 1 retried, \d+ failed$")
    )
    retried = bars.locator("rect.bar.retried")
    assert float(await retried.get_attribute("height") or 0) > 0
    fill = "bar => getComputedStyle(bar).fill"
    colours = {
        outcome: await page.locator(f"#throughput rect.bar.{outcome}").first.evaluate(fill)
        for outcome in ("completed", "retried", "failed")
    }
    assert len(set(colours.values())) == 3, colours
    swatch = page.locator(".legend .swatch.retried")
    await expect(swatch).to_be_visible()
    assert await swatch.evaluate("s => getComputedStyle(s).backgroundColor") == colours["retried"]
    await expect(page.locator(".legend")).to_contain_text("retried")


async def test_dashboard_end_to_end(live_worker: Live, page: Page, tmp_path: Path) -> None:
    live = live_worker
    gate = tmp_path / "gate"
    marker = tmp_path / "marker"
    blocker = await live.enqueue("gated", args=[str(gate)], tenant="acme")
    waiting = await live.enqueue("echo", args=[XSS], tenant="acme", labels={"kind": "xss"})
    foreign = await live.enqueue("echo", args=["not yours"], tenant="globex")
    later = await live.enqueue("echo", args=["later"], tenant="acme", delay=3600)
    flaky = await live.enqueue("fail_unless", args=[str(marker)], tenant="acme")

    await log_in(page, live, await live.key("acme"))
    await page.evaluate("window.__loaded_once = true")

    # Live updates: the worker (one slot) runs the gated job, the echo job waits queued.
    jobs = page.locator("#jobs")
    await expect(jobs.locator(f'tr[data-job-id="{blocker}"] .badge')).to_have_text(
        "running", timeout=WAIT
    )
    await expect(jobs.locator(f'tr[data-job-id="{waiting}"] .badge')).to_have_text("queued")
    await expect(jobs.locator(f'tr[data-job-id="{foreign}"]')).to_have_count(0)
    queued_cell = page.locator('#queues tr[data-queue="default"] td[data-state="queued"]')
    await expect(queued_cell).not_to_have_text("0")
    await jobs.locator(f'tr[data-job-id="{blocker}"]').click()
    await expect(page.locator("#detail-progress-text")).to_have_text(
        "50% · waiting for the gate", timeout=WAIT
    )
    assert await page.locator("#detail-progress").evaluate("bar => bar.value") == 50
    gate.touch()
    await expect(jobs.locator(f'tr[data-job-id="{waiting}"] .badge')).to_have_text(
        "completed", timeout=WAIT
    )
    await expect(jobs.locator(f'tr[data-job-id="{blocker}"] .badge')).to_have_text("completed")
    assert await page.evaluate("window.__loaded_once") is True  # no reload happened

    # Job detail: the arguments are text, never markup.
    await jobs.locator(f'tr[data-job-id="{waiting}"]').click()
    detail = page.locator("#job-detail")
    await expect(detail).to_be_visible()
    await expect(detail).to_have_attribute("data-job-id", str(waiting))
    await expect(page.locator("#detail-args")).to_contain_text(XSS)
    await expect(page.locator("#detail-result")).to_contain_text(XSS)
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("#main-view script, #main-view img").count() == 0
    await expect(page.locator("#detail-fields")).to_contain_text("kind:xss")

    # Cancel a scheduled job from its detail panel.
    await jobs.locator(f'tr[data-job-id="{later}"]').click()
    await expect(detail).to_have_attribute("data-job-id", str(later))
    await page.click("#cancel-btn")
    await expect(detail).to_have_attribute("data-state", "cancelled", timeout=WAIT)
    await expect(jobs.locator(f'tr[data-job-id="{later}"] .badge')).to_have_text("cancelled")
    assert (await live.app.get_job(later)).state is JobState.CANCELLED

    # Retry a failed job: it fails for want of the marker, then succeeds on retry.
    await expect(jobs.locator(f'tr[data-job-id="{flaky}"] .badge')).to_have_text(
        "failed", timeout=WAIT
    )
    await jobs.locator(f'tr[data-job-id="{flaky}"]').click()
    await expect(detail).to_have_attribute("data-job-id", str(flaky))
    await expect(page.locator("#detail-error")).to_contain_text("marker marker is missing")
    await expect(page.locator("#detail-traceback")).to_contain_text("RuntimeError")
    marker.touch()
    await page.click("#retry-btn")
    await expect(detail).to_have_attribute("data-state", "completed", timeout=WAIT)
    await expect(jobs.locator(f'tr[data-job-id="{flaky}"] .badge')).to_have_text("completed")
    retried = await live.app.get_job(flaky)
    assert (retried.state, retried.attempt) == (JobState.COMPLETED, 2)

    # Workers, throughput (a job that fails once shows a retried attempt), filters.
    bouncing = await live.enqueue("fail_once", tenant="acme")
    await expect(jobs.locator(f'tr[data-job-id="{bouncing}"] .badge')).to_have_text(
        "completed", timeout=WAIT
    )
    await expect(page.locator("#workers tbody tr")).to_have_count(1)
    await expect(page.locator("#throughput svg")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#throughput-caption")).to_contain_text(
        "finished, 1 retried", timeout=WAIT
    )
    await assert_retried_bar(page)
    await page.click("#detail-close")
    await page.check('#filter-status input[value="cancelled"]')
    await page.click("#filters button[type=submit]")
    await expect(jobs.locator("tbody tr")).to_have_count(1, timeout=WAIT)
    await expect(jobs.locator(f'tr[data-job-id="{later}"]')).to_have_count(1)
    await page.click("#filter-clear")
    await expect(jobs.locator("tbody tr")).to_have_count(5, timeout=WAIT)

    await jobs.locator(f'tr[data-job-id="{waiting}"]').click()
    await expect(detail).to_have_attribute("data-job-id", str(waiting))
    await assert_beside(page.locator("#jobs"), detail)
    shot = tmp_path / "dashboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    copy = os.environ.get(SCREENSHOT_COPY_ENV)
    if copy:
        shutil.copyfile(shot, copy)

    await page.click("#logout")
    await expect(page.locator("#login-view")).to_be_visible()


async def test_read_only_session_shows_no_action_buttons(live_sqlite: Live, page: Page) -> None:
    job_id = await live_sqlite.enqueue("echo", args=[1], tenant="acme", delay=3600)
    await page.goto(f"{live_sqlite.url}/dashboard")
    await page.fill("#api-key", await live_sqlite.key("acme", read_only=True))
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#who")).to_have_text("tenant acme (read-only)")
    await page.locator(f'#jobs tr[data-job-id="{job_id}"]').click()
    await expect(page.locator("#job-detail")).to_have_attribute("data-job-id", str(job_id))
    for button in ("#cancel-btn", "#retry-btn", "#delete-btn"):
        await expect(page.locator(button)).to_be_hidden()


async def _polls_during(polls: list[float], seconds: float) -> int:
    """How many of ``polls`` (request times) fall in the next ``seconds``. A rate needs
    a span of time: this waits it out rather than waiting for an event."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return sum(start <= moment <= start + seconds for moment in polls)


async def test_rapid_clicks_do_not_multiply_the_polling(live_sqlite: Live, page: Page) -> None:
    """One chain of refreshes, whatever the clicks: a click while a refresh is in flight
    asks for one more refresh, never for a second chain that would poll forever."""
    ids = [await live_sqlite.enqueue("echo", args=[n], tenant="acme", delay=3600) for n in (1, 2)]
    polls: list[float] = []
    page.on(
        "request",
        lambda request: (
            polls.append(time.monotonic()) if urlsplit(request.url).path == "/queues" else None
        ),
    )
    await log_in(page, live_sqlite, await live_sqlite.key("acme"))
    await expect(page.locator("#jobs tbody tr")).to_have_count(2)
    most = RATE_WINDOW / POLL_SECONDS + 2  # one chain, plus the click's extra refresh
    baseline = await _polls_during(polls, RATE_WINDOW)
    assert 2 <= baseline <= most, f"{baseline} polls in {RATE_WINDOW}s before any click"

    await page.evaluate(
        """(ids) => {
            for (let i = 0; i < 60; i++) {
                document.querySelector(`#jobs tr[data-job-id="${ids[i % 2]}"]`).click();
            }
        }""",
        ids,
    )
    await expect(page.locator("#job-detail")).to_have_attribute("data-job-id", str(ids[1]))
    after = await _polls_during(polls, RATE_WINDOW)
    assert most >= after >= 1, (
        f"{after} polls in {RATE_WINDOW}s after 60 clicks ({baseline} before)"
    )


async def test_filters_take_several_states_and_a_created_range(
    live_sqlite: Live, page: Page
) -> None:
    live = live_sqlite
    store = await live.app.backend()
    hours_ago = datetime.now(UTC) - timedelta(hours=2)
    (old,) = await store.job_insert_many([NewJob(task="echo", tenant="acme")], now=hours_ago)
    waiting = await live.enqueue("echo", tenant="acme", delay=3600)
    cancelled = await live.enqueue("echo", tenant="acme")
    await live.app.cancel(cancelled)
    queued = await live.enqueue("echo", tenant="acme")
    await log_in(page, live, await live.key("acme"))
    rows = page.locator("#jobs tbody tr")
    await expect(rows).to_have_count(4)

    async def shown() -> set[int]:
        return {int(i) for i in await rows.evaluate_all("rows => rows.map(r => r.dataset.jobId)")}

    async def apply(**dates: datetime) -> None:
        for name, moment in dates.items():
            # The input takes the browser's local time, minutes only.
            local = await page.evaluate(
                """(ms) => {
                    const d = new Date(ms);
                    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
                    return d.toISOString().slice(0, 16);
                }""",
                moment.timestamp() * 1000,
            )
            await page.fill(f"#filter-created-{name}", local)
        await page.click("#filters button[type=submit]")

    await page.check('#filter-status input[value="scheduled"]')
    await page.check('#filter-status input[value="cancelled"]')
    await apply()
    await expect(rows).to_have_count(2)
    assert await shown() == {waiting, cancelled}

    await page.click("#filter-clear")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await apply(after=hour_ago)
    await expect(rows).to_have_count(3)
    assert await shown() == {waiting, cancelled, queued}
    await page.click("#filter-clear")
    await apply(before=hour_ago)
    await expect(rows).to_have_count(1)
    assert await shown() == {old.id}
    await page.check('#filter-status input[value="completed"]')
    await apply()
    await expect(page.locator("#jobs-empty")).to_be_visible()
    await page.click("#filter-clear")
    await expect(rows).to_have_count(4)


async def test_the_job_detail_leaves_its_list_in_view(live_sqlite: Live, page: Page) -> None:
    job_id = await live_sqlite.enqueue("echo", args=["x"], tenant="acme", delay=3600)
    await log_in(page, live_sqlite, await live_sqlite.key("acme"))
    detail, backdrop = page.locator("#job-detail"), page.locator("#detail-backdrop")
    row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
    # Wide: the page makes room for the panel; every column of the list stays visible.
    await row.click()
    await expect(detail).to_have_attribute("data-job-id", str(job_id))
    await assert_beside(page.locator("#jobs"), detail)
    await assert_beside(page.locator("#queues"), detail)
    await expect(backdrop).to_be_hidden()
    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()
    await expect(row).not_to_have_class("clickable selected")
    # Narrow: the panel covers the page over a backdrop, which closes it when clicked.
    await page.set_viewport_size({"width": 900, "height": 900})
    await row.click()
    await expect(detail).to_be_visible()
    await expect(backdrop).to_be_visible()
    await backdrop.click(position={"x": 20, "y": 300})
    await expect(detail).to_be_hidden()
    await expect(backdrop).to_be_hidden()
