"""Signing webhook bodies, and checking a signature on the receiving side.

The header is ``X-Workhorse-Signature: sha256=<hex>``: an HMAC-SHA256 of the raw request
body (the exact bytes, before any JSON parsing) keyed with the tenant's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Workhorse-Signature"
SCHEME = "sha256="


def new_secret() -> str:
    """A fresh signing secret (256 random bits, URL-safe text)."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SCHEME + digest


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True if ``header`` (the ``X-Workhorse-Signature`` value) signs ``body`` with
    ``secret``. Compares in constant time; use it in your receiver::

        if not verify_signature(secret, await request.body(), request.headers.get(
            "X-Workhorse-Signature")):
            return Response(status_code=401)
    """
    if not header or not header.startswith(SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body), header)
