"""The dashboard's job detail lists the parts of the job's workflow, with their states
and what each waits for, in real headless Chromium; a click on a part opens it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from workhorse import chain

from .conftest import Live
from .test_dashboard import WAIT, browser, log_in, page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

__all__ = ["browser", "page"]  # fixtures this module uses


async def test_the_job_detail_lists_its_workflow(live_sqlite: Live, page: Page) -> None:
    live = live_sqlite
    echo: Any = live.app.tasks["echo"]
    handle = await chain(
        echo.call("a"), echo.partial(), echo.partial(), name="relay", tenant="acme"
    ).enqueue()
    first, second, third = (job.id for job in handle.parts)
    await log_in(page, live, await live.key("acme"))
    await page.locator(f'#jobs tr[data-job-id="{second}"]').click()
    detail = page.locator("#job-detail")
    await expect(detail).to_have_attribute("data-job-id", str(second))
    box = page.locator("#detail-workflow-box")
    await expect(box).to_be_visible(timeout=WAIT)
    await expect(page.locator("#detail-workflow-title")).to_contain_text(
        f"Workflow {handle.id} · relay"
    )
    rows = page.locator("#detail-workflow tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_have_attribute("data-state", "queued")
    await expect(rows.nth(1)).to_have_attribute("data-state", "blocked")
    await expect(rows.nth(1).locator("td").nth(3)).to_have_text(str(first))
    await expect(rows.nth(2).locator("td").nth(3)).to_have_text(str(second))
    await expect(page.locator("#detail-fields")).to_contain_text(str(handle.id))
    # The states follow the store: cancel the workflow behind the page's back.
    await live.app.cancel_workflow(handle.id)
    await expect(rows.nth(2)).to_have_attribute("data-state", "cancelled", timeout=WAIT)
    await rows.nth(2).click()
    await expect(detail).to_have_attribute("data-job-id", str(third))
    selected = page.locator(f'#detail-workflow tr[data-job-id="{third}"]')
    await expect(selected).to_have_class("clickable selected")
