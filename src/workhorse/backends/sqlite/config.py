"""What a ``sqlite:///path?option=value`` URL and keyword options ask for."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, unquote

from workhorse.errors import ConfigurationError

_SYNCHRONOUS = ("FULL", "NORMAL")


@dataclass(frozen=True, slots=True)
class SQLiteSettings:
    """Validated options of one SQLite store."""

    path: str
    """The database file (relative to the working directory unless absolute)."""
    synchronous: str = "FULL"
    """FULL: a committed job survives power loss (a durable commit fsyncs the WAL before
    it returns, see ``wal_sync``). NORMAL: survives a crash of the process, not of the
    machine; single commits are two to five times faster."""
    busy_timeout: float = 5.0
    """Seconds SQLite itself waits for another connection's write lock."""
    lock_timeout: float = 120.0
    """Seconds a write keeps retrying while the database stays locked before the caller
    gets ``BackendUnavailableError``."""
    watch_interval: float = 0.01
    """Where inotify is missing (not Linux): seconds between two ``PRAGMA data_version``
    checks of ``watch()``. Each check is a timer wake-up of a thread: 10 ms costs about
    1% of a core and wakes about 5 ms after a commit. On Linux ``watch()`` sleeps until
    the database's files are written and this is not used."""

    @property
    def fsync(self) -> bool:
        """Whether a durable commit waits for the disk (``synchronous=FULL``)."""
        return self.synchronous == "FULL"


def parse_settings(url: str, options: Mapping[str, Any]) -> SQLiteSettings:
    """Settings from ``url`` (``sqlite:///relative.db``, ``sqlite:////absolute.db``, with
    ``?synchronous=full|normal&busy_timeout=SECONDS``) and keyword ``options``, which win
    over the URL's."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        raise ConfigurationError(f"not a SQLite URL: {url!r} (expected sqlite:///path)")
    location, _, query = rest.partition("?")
    host, _, path = location.partition("/")
    if host:
        raise ConfigurationError(
            f"{url!r}: a SQLite URL has no host; use sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    path = unquote(path)
    if not path or path == ":memory:" or path.endswith("/"):
        raise ConfigurationError(
            f"{url!r} names no database file (for an in-process store use memory://)"
        )
    raw: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    raw.update(options)
    known = {f.name for f in fields(SQLiteSettings)} - {"path"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown SQLite option(s) {', '.join(unknown)} in {url!r} "
            f"(known: {', '.join(sorted(known))})"
        )
    synchronous = str(raw.get("synchronous", "full")).upper()
    if synchronous not in _SYNCHRONOUS:
        raise ConfigurationError(f"synchronous={raw['synchronous']!r}: expected 'full' or 'normal'")
    defaults = SQLiteSettings(path=path)
    settings = SQLiteSettings(
        path=path,
        synchronous=synchronous,
        busy_timeout=_seconds(raw, "busy_timeout", defaults.busy_timeout),
        lock_timeout=_seconds(raw, "lock_timeout", defaults.lock_timeout),
        watch_interval=_seconds(raw, "watch_interval", defaults.watch_interval),
    )
    if settings.watch_interval <= 0:
        raise ConfigurationError("watch_interval must be more than 0 seconds")
    return settings


def _seconds(raw: Mapping[str, Any], name: str, default: float) -> float:
    if name not in raw:
        return default
    value = raw[name]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}={value!r}: expected a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"{name}={value!r}: expected a number of seconds, 0 or more")
    return seconds
