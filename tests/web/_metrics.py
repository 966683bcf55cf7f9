"""Scraping ``/metrics`` in tests: every sample by name and labels, and scrapes repeated
until the figures are in (job counts reach the store about once a second)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from _polling import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels``, or None."""
    return found.get((name, tuple(sorted(labels.items()))))


async def scrape(client: httpx.AsyncClient) -> Samples:
    """One ``GET /metrics``, which must answer 200 in the Prometheus text format."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def scrape_until(
    client: httpx.AsyncClient, done: Callable[[Samples], bool], what: str, timeout: float = 30
) -> Samples:
    """Scrape until ``done`` says the figures are in; fail after ``timeout`` seconds."""
    return await eventually(lambda: scrape(client), done, timeout=timeout, what=what)
