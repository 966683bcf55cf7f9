"""The SQL of one PostgreSQL schema: named queries and migrations with the schema name
filled in, and queries composed with named conditions (a job filter, a claim's scope).

A query may include another by name (``{@claimed_columns}``): parts that several
statements share are written once in ``queries.sql``."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workhorse.backends._sql import Migration, load_migrations, load_queries
from workhorse.backends.base import JobFilter
from workhorse.errors import ConfigurationError
from workhorse.serialization import dumps

_PACKAGE = "workhorse.backends.postgres"
_CHANNEL_SUFFIX = "_jobs"
_NEXT_CHANNEL_SUFFIX = "_next"
# PostgreSQL truncates identifiers (and refuses channel names) past 63 bytes, and the
# channels are the schema name plus a suffix. Plain identifiers also need no escaping.
_SCHEMA_NAME = re.compile(rf"^[A-Za-z_][A-Za-z0-9_]{{0,{62 - len(_CHANNEL_SUFFIX)}}}$")
_INCLUDE = re.compile(r"\{@(\w+)\}")
_ROW_LIMIT = re.compile(r"\{(\w+_limit)\}")

DEFAULT_SCHEMA = "workhorse"
"""The schema used when the URL names none."""


@functools.cache
def _raw_queries() -> dict[str, str]:
    queries = load_queries(_PACKAGE)

    def expand(sql: str, seen: tuple[str, ...]) -> str:
        def included(match: re.Match[str]) -> str:
            name = match[1]
            if name in seen:
                raise ValueError(f"queries.sql: {name!r} includes itself")
            return expand(queries[name], (*seen, name))

        return _INCLUDE.sub(included, sql)

    return {name: expand(sql, (name,)) for name, sql in queries.items()}


@functools.cache
def _raw_migrations() -> tuple[Migration, ...]:
    return tuple(load_migrations(_PACKAGE))


class Statements:
    """Every query of the backend, qualified with one schema."""

    def __init__(self, schema: str) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigurationError(
                f"invalid PostgreSQL schema name {schema!r}: use letters, digits and "
                f"underscores, starting with a letter or underscore, at most "
                f"{63 - len(_CHANNEL_SUFFIX)} characters"
            )
        self.schema = schema
        self.channel = schema + _CHANNEL_SUFFIX
        """The NOTIFY channel on which writes that make jobs claimable name their queue."""
        self.next_channel = schema + _NEXT_CHANNEL_SUFFIX
        """The NOTIFY channel on which writes that schedule jobs for later name their
        queue: the next job of that queue may now be due sooner than a worker thought."""
        self._queries = {name: self._render(sql) for name, sql in _raw_queries().items()}
        self._composed: dict[tuple[object, ...], str] = {}

    def _render(self, sql: str) -> str:
        return (
            sql.replace("{schema}", f'"{self.schema}"')
            .replace("{channel}", f"'{self.channel}'")
            .replace("{next_channel}", f"'{self.next_channel}'")
        )

    def __getitem__(self, name: str) -> str:
        return self._queries[name]

    def compose(
        self, name: str, *, rows: Mapping[str, int] | None = None, **slots: Sequence[str]
    ) -> str:
        """Query ``name`` with each ``{slot}`` replaced by the named queries given for
        it, joined with AND (``true`` when there are none), and each row limit written
        into the text (``{pick_limit}``, ``{queue_limit}``) replaced by ``rows[name]``
        rounded up to a power of two: a few texts, each planned once by the server for
        about that many rows (see ``pick_waiting``)."""
        limits = {key: 1 << max(0, value - 1).bit_length() for key, value in (rows or {}).items()}
        key = (
            name,
            *sorted(limits.items()),
            *((slot, *parts) for slot, parts in sorted(slots.items())),
        )
        query = self._composed.get(key)
        if query is None:
            query = self._queries[name]
            filled = {
                slot: " AND ".join(self._queries[part] for part in parts) or "true"
                for slot, parts in slots.items()
            }
            for _ in range(2):  # a slot's query may hold slots (pick_waiting: scope, where)
                for slot, text in filled.items():
                    query = query.replace(f"{{{slot}}}", text)

            def limit(match: re.Match[str]) -> str:
                if match[1] not in limits:
                    raise ValueError(f"{name} needs rows[{match[1]!r}]")
                return str(limits[match[1]])

            query = _ROW_LIMIT.sub(limit, query)
            self._composed[key] = query
        return query

    def picking(
        self,
        name: str,
        *,
        queues: Sequence[str] | None,
        limit: int,
        where: Sequence[str] = (),
        **slots: Sequence[str],
    ) -> str:
        """Query ``name``, which picks waiting jobs (``pick_waiting``), for at most
        ``limit`` jobs from each of ``queues`` in turn (``%(queues)s``, without repeats)
        or from every queue, narrowed by the named conditions ``where``."""
        rows = {"pick_limit": limit}
        scope, conditions = ["every_queue"], list(where)
        if queues is not None:
            rows["queue_limit"] = len(queues)
            scope, conditions = ["each_named_queue"], ["in_named_queue", *where]
        return self.compose(name, rows=rows, scope=scope, where=conditions, **slots)

    def filtered(
        self, name: str, job_filter: JobFilter, *, before_id: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Query ``name`` narrowed to ``job_filter`` (and ``id < before_id`` when given),
        and the parameters it needs."""
        params = _filter_params(job_filter, before_id)
        return self.compose(name, filter=[f"where_{field}" for field in params]), params

    def migrations(self) -> list[Migration]:
        """The numbered migrations, rendered for this schema."""
        return [Migration(m.version, m.name, self._render(m.sql)) for m in _raw_migrations()]

    def migration_script(self, *, after: int = 0) -> str:
        """One transaction that applies the migrations numbered above ``after`` (all of
        them by default: the schema from scratch) and records each as applied, for teams
        that run migrations themselves."""
        parts = ["BEGIN;", self["migration_bootstrap"] + ";"]
        for migration in self.migrations():
            if migration.version <= after:
                continue
            parts.append(f"-- {migration.version:04d}_{migration.name}")
            parts.append(migration.sql.strip())
            # Safe to inline: an int and a file name of word characters (see _sql.py).
            parts.append(
                f'INSERT INTO "{self.schema}".workhorse_migrations (version, name) '  # noqa: S608
                f"VALUES ({migration.version}, '{migration.name}');"
            )
        parts.append("COMMIT;")
        return "\n\n".join(parts) + "\n"


def _filter_params(job_filter: JobFilter, before_id: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tenant": job_filter.tenant,
        "queue": job_filter.queue,
        "states": None if job_filter.states is None else [str(s) for s in job_filter.states],
        "task": job_filter.task,
        "label": None if job_filter.label is None else dumps(dict([job_filter.label])),
        "created_after": job_filter.created_after,
        "created_before": job_filter.created_before,
        "parent_id": job_filter.parent_id,
        "before_id": before_id,
    }
    return {field: value for field, value in values.items() if value is not None}
