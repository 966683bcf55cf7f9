"""Dashboard sessions: a signed cookie that remembers which API key logged in, and the
CSRF checks that go with cookie authentication.

The cookie holds a session id, the key's hash, a CSRF token and an expiry, signed with
HMAC-SHA256. It is ``HttpOnly`` and ``SameSite=Strict`` (and ``Secure`` over HTTPS). A
logout records the session id in the store, so the cookie is refused from then on even
if it was copied; revoking the API key ends its sessions too. A state-changing request
that authenticates by cookie must also carry the CSRF token in the ``X-CSRF-Token``
header and an ``Origin`` (or ``Referer``) of this very host or a trusted origin (see
:mod:`workhorse.web.origins`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from fastapi import Request, Response

from workhorse.web.origins import TRUSTED_ORIGINS_ENV, Origins

if TYPE_CHECKING:
    from workhorse.app import Workhorse

SESSION_COOKIE = "workhorse_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECRET_ENV = "WORKHORSE_SESSION_SECRET"  # noqa: S105 - a variable name


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in dashboard session."""

    id: str
    """Names the session in the store's record of ended sessions."""
    ref: str
    """The authenticator's reference to the credential (the API key's hash)."""
    csrf: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Issues and verifies session cookies.

    ``secret`` defaults to ``$WORKHORSE_SESSION_SECRET``, or a random one per process (then
    sessions end when the server restarts, and several server processes need the
    variable set to share sessions).
    """

    def __init__(self, secret: str | bytes | None = None, *, max_age: int = 8 * 3600) -> None:
        if secret is None:
            secret = os.environ.get(SECRET_ENV) or secrets.token_bytes(32)
        self._key = secret.encode() if isinstance(secret, str) else secret
        if len(self._key) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self.max_age = max_age

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, ref: str, *, now: float | None = None) -> tuple[str, Session]:
        """A new session for ``ref``: the cookie value and what it holds."""
        moment = time.time() if now is None else now
        session = Session(
            id=secrets.token_urlsafe(16),
            ref=ref,
            csrf=secrets.token_urlsafe(24),
            expires=int(moment) + self.max_age,
        )
        fields = {"i": session.id, "r": session.ref, "c": session.csrf, "e": session.expires}
        payload = _b64(orjson.dumps(fields))
        return f"{payload}.{self._sign(payload)}", session

    def read(self, value: str | None, *, now: float | None = None) -> Session | None:
        """The session in a cookie value, or None if absent, forged or expired."""
        if not value or len(value) > 4096:
            return None
        payload, _, signature = value.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            session = Session(
                id=str(data["i"]),
                ref=str(data["r"]),
                csrf=str(data["c"]),
                expires=int(data["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (time.time() if now is None else now):
            return None
        return session

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        """Attach the session cookie, scoped to the path the API is mounted under."""
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.max_age,
            path=cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        """Remove the session cookie."""
        response.delete_cookie(
            SESSION_COOKIE,
            path=cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


class Sessions:
    """The dashboard sessions of one router: cookies from ``codec``, ended ones recorded
    in ``app``'s store. If the store cannot be reached, cookie requests fail (and
    logouts report the error) rather than trust a session that may have ended."""

    def __init__(self, app: Workhorse, codec: SessionCodec) -> None:
        self._app = app
        self.codec = codec

    def issue(self, ref: str) -> tuple[str, Session]:
        """A new session for ``ref``: the cookie value and what it holds."""
        return self.codec.issue(ref)

    async def read(self, value: str | None) -> Session | None:
        """The live session in a cookie value; None if absent, forged, expired or ended."""
        session = self.codec.read(value)
        if session is None:
            return None
        store = await self._app.backend()
        return None if await store.session_revoked(session_id=session.id) else session

    async def end(self, session: Session) -> None:
        """End ``session``: its cookie is refused from now on, wherever it was copied."""
        store = await self._app.backend()
        until = datetime.fromtimestamp(session.expires, UTC)
        await store.session_revoke(session_id=session.id, expires_at=until)


def cookie_path(request: Request) -> str:
    """The path the workhorse routes live under (everything before ``/dashboard``)."""
    path = request.url.path
    index = path.rfind("/dashboard")
    base = path[:index] if index >= 0 else ""
    return base or "/"


def csrf_problem(request: Request, session: Session, origins: Origins) -> str | None:
    """Why a state-changing, cookie-authenticated request must be refused, or None."""
    if request.method in SAFE_METHODS:
        return None
    if not origins.allows(request):
        return (
            "cross-site request refused: Origin or Referer must be this host or a trusted "
            f"origin (behind a proxy, set {TRUSTED_ORIGINS_ENV})"
        )
    token = request.headers.get(CSRF_HEADER, "")
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        return "missing or wrong CSRF token (send the X-CSRF-Token header)"
    return None
