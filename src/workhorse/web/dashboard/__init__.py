"""The dashboard: one HTML page and a small script (committed, no build step) that reads
the same JSON API as everyone else, logged in through a session cookie.

XSS: the script builds the page with DOM calls and ``textContent`` only (never
``innerHTML``), and the Content-Security-Policy forbids inline scripts and styles, so a
job argument holding ``<script>`` shows as text. CSRF: see :mod:`workhorse.web.sessions`.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from workhorse.web.auth import Principal
from workhorse.web.errors import ApiError
from workhorse.web.guard import Guard, Reader, guard_of
from workhorse.web.sessions import SESSION_COOKIE, Session, Sessions

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


class Login(BaseModel):
    """The dashboard's login form."""

    api_key: str = Field(min_length=1, max_length=256)


class SessionInfo(BaseModel):
    """Who is logged in, and the CSRF token the page sends with every action."""

    tenant: str | None
    admin: bool
    read_only: bool
    label: str
    csrf: str


def _info(principal: Principal, session: Session) -> SessionInfo:
    return SessionInfo(
        tenant=principal.tenant,
        admin=principal.admin,
        read_only=principal.read_only,
        label=principal.label,
        csrf=session.csrf,
    )


async def current_session(request: Request) -> tuple[Principal, Session]:
    """Dependency: the logged-in dashboard session (401 without one)."""
    guard = guard_of(request)
    session = await guard.sessions.read(request.cookies.get(SESSION_COOKIE))
    principal = None if session is None else await guard.authenticator.resume(session.ref)
    if session is None or principal is None:
        raise ApiError(401, "unauthorized", "not logged in")
    return principal, session


CurrentSession = Annotated[tuple[Principal, Session], Depends(current_session)]


def install_dashboard(router: APIRouter, guard: Guard, sessions: Sessions) -> None:
    """Add ``/dashboard`` (the page, its assets, login, logout, session) to ``router``."""

    @router.get("/dashboard", include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        path = request.url.path
        base = path[: path.rfind("/dashboard")]
        body = _static("index.html").replace("__BASE__", html.escape(base, quote=True))
        return HTMLResponse(body, headers=SECURITY_HEADERS)

    @router.get("/dashboard/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _STATIC.get(name)
        if media_type is None:
            raise ApiError(404, "not_found", "no such file")
        return Response(_static(name), media_type=media_type, headers=SECURITY_HEADERS)

    @router.post("/dashboard/login", tags=["dashboard"], summary="Open a dashboard session")
    async def login(body: Login, request: Request) -> JSONResponse:
        """Exchange an API key for a session cookie (same-origin requests only)."""
        if not guard.origins.allows(request):
            raise ApiError(403, "csrf", "cross-site login refused")
        principal = await guard.authenticator.authenticate(body.api_key.strip())
        if principal is None:
            raise ApiError(401, "unauthorized", "invalid or revoked API key")
        cookie, session = sessions.issue(principal.session_ref)
        response = JSONResponse(
            _info(principal, session).model_dump(), headers={"Cache-Control": "no-store"}
        )
        sessions.codec.set_cookie(response, request, cookie)
        return response

    @router.get("/dashboard/session", tags=["dashboard"], summary="The current session")
    async def session_info(who: CurrentSession) -> SessionInfo:
        """Who is logged in and the CSRF token for actions (401 if nobody)."""
        return _info(*who)

    @router.post("/dashboard/logout", tags=["dashboard"], summary="End the session")
    async def logout(request: Request, principal: Reader) -> Response:
        """End the session (needs the CSRF token): its cookie is dropped, and refused
        from now on even if a copy of it is replayed."""
        session = await sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            await sessions.end(session)
        response = Response(status_code=204)
        sessions.codec.clear_cookie(response, request)
        return response
