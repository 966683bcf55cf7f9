"""Named SQL queries and numbered migrations, read from the files beside a backend.

A queries file holds blocks headed ``-- name: claim_jobs``; the text up to the next
header is that query. Migrations are ``migrations/NNNN_description.sql``, with the same
numbers on every SQL backend, applied in order by number; a store records each one it
applied, so a number left free (by a branch merged later) is applied when it arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    """Map each query name in ``package``'s ``filename`` to its SQL text."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{package}/{filename}: query {name!r} defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change."""

    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """The migrations under ``package``/migrations, in order."""
    folder = resources.files(package).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise ValueError(f"{package}: migrations need distinct numbers from 1, found {versions}")
    return found
