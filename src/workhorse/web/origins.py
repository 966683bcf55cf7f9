"""Which origins the dashboard trusts: its own host, plus the trusted origins it is told.

A cookie-authenticated write, and a login, must come from a page of the dashboard's own
origin (the ``Origin`` header, or without one the ``Referer``). The server knows its
origin from the ``Host`` header, which a reverse proxy may rewrite (nginx's default
``proxy_set_header Host $proxy_host`` sends the upstream's address): then the browser's
origin, say ``https://jobs.example.com``, must be named as trusted, with
``create_router(trusted_origins=[...])``, ``workhorse serve --trusted-origin`` or
``$WORKHORSE_TRUSTED_ORIGINS`` (comma-separated).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from fastapi import Request

from workhorse.errors import ConfigurationError

TRUSTED_ORIGINS_ENV = "WORKHORSE_TRUSTED_ORIGINS"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SEPARATORS = re.compile(r"[,\s]+")


def _normal(parts: SplitResult) -> str | None:
    """``scheme://host[:port]`` of a parsed URL, lowercased and without a default
    port; None if it is not an absolute http(s) URL."""
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = "" if port is None or port == _DEFAULT_PORTS[parts.scheme] else f":{port}"
    return f"{parts.scheme}://{host}{shown}"


def parse_origin(text: str) -> str:
    """``text`` as an origin (``https://jobs.example.com``, ``http://10.0.0.5:8080``);
    ``ConfigurationError`` for anything else (a path, a query, no scheme)."""
    parts = urlsplit(text.strip().lower())
    origin = _normal(parts)
    if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"trusted origin {text!r} must look like https://host or http://host:port "
            "(a scheme and a host, no path)"
        )
    return origin


class Origins:
    """The origins allowed to log in and to send cookie-authenticated writes.

    ``trusted`` defaults to ``$WORKHORSE_TRUSTED_ORIGINS``; the request's own host is
    always allowed."""

    def __init__(self, trusted: Iterable[str] | None = None) -> None:
        if trusted is None:
            trusted = [o for o in _SEPARATORS.split(os.environ.get(TRUSTED_ORIGINS_ENV, "")) if o]
        self.trusted = frozenset(parse_origin(origin) for origin in trusted)

    def allows(self, request: Request) -> bool:
        """True if the request's ``Origin`` (or, without one, ``Referer``) is this host
        or a trusted origin."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source or source == "null":
            return False
        parts = urlsplit(source.lower())
        origin = _normal(parts)
        if origin is None:
            return False
        host = request.headers.get("host", "").lower()
        return parts.netloc == host or origin in self.trusted
