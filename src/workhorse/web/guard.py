"""FastAPI dependencies that authenticate a request and check what it may do.

Credentials: ``Authorization: Bearer <key>`` (or ``X-API-Key: <key>``) for programs, the
session cookie for the dashboard. Missing or unknown credentials are a 401, a read-only
key writing is a 403, and so is a cookie-authenticated write without its CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from workhorse.web.auth import Authenticator, Principal
from workhorse.web.errors import ApiError
from workhorse.web.origins import Origins
from workhorse.web.sessions import SESSION_COOKIE, Sessions, csrf_problem

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="workhorse"'}
_STATE_KEY = "workhorse_principal"
_GUARD_KEY = "workhorse_guard"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_CHALLENGE)


def bearer_token(request: Request) -> str | None:
    """The API key a request carries in its headers, if any."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <api key>'")
        return token.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key is not None else None


class Guard:
    """Resolves the principal of each request; its methods are FastAPI dependencies."""

    def __init__(self, authenticator: Authenticator, sessions: Sessions, origins: Origins) -> None:
        self.authenticator = authenticator
        self.sessions = sessions
        self.origins = origins

    async def principal(self, request: Request) -> Principal:
        """Any valid credential (a cookie-authenticated write must pass the CSRF check).
        Resolved once per request: the result is kept on ``request.state``."""
        known = getattr(request.state, _STATE_KEY, None)
        if isinstance(known, Principal):
            return known
        found = await self._resolve(request)
        setattr(request.state, _STATE_KEY, found)
        return found

    async def _resolve(self, request: Request) -> Principal:
        token = bearer_token(request)
        if token is not None:
            found = await self.authenticator.authenticate(token)
            if found is None:
                raise _unauthorized("invalid or revoked API key")
            return found
        session = await self.sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise _unauthorized("authentication required: send 'Authorization: Bearer <api key>'")
        found = await self.authenticator.resume(session.ref)
        if found is None:
            raise _unauthorized("the session's API key was revoked; log in again")
        problem = csrf_problem(request, session, self.origins)
        if problem is not None:
            raise ApiError(403, "csrf", problem)
        return found

    async def writer(self, request: Request) -> Principal:
        """A principal allowed to change jobs (not read-only)."""
        found = await self.principal(request)
        if found.read_only:
            raise ApiError(403, "forbidden", "this API key is read-only")
        return found

    async def admin(self, request: Request) -> Principal:
        """An admin principal (read-only admins included)."""
        found = await self.principal(request)
        if not found.admin:
            raise ApiError(403, "forbidden", "this endpoint needs an admin API key")
        return found


# Module-level dependencies (annotations must resolve from module globals): the route
# class puts the router's guard on the request before they run.


def attach(request: Request, guard: Guard) -> None:
    """Make ``guard`` the one the dependencies below use for ``request``."""
    setattr(request.state, _GUARD_KEY, guard)


def guard_of(request: Request) -> Guard:
    """The guard of the router serving ``request``."""
    guard = getattr(request.state, _GUARD_KEY, None)
    if not isinstance(guard, Guard):
        raise RuntimeError("workhorse dependencies only work on routes of create_router()")
    return guard


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="api_key",
    description="An API key made with `workhorse keys create`, sent as a bearer token.",
)
# Only documents the scheme in OpenAPI (the /docs "Authorize" button): the guard reads
# the headers itself.
_Documented = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def reader(request: Request, _credentials: _Documented) -> Principal:
    """Dependency: any authenticated principal."""
    return await guard_of(request).principal(request)


async def writer(request: Request, _credentials: _Documented) -> Principal:
    """Dependency: a principal allowed to change jobs."""
    return await guard_of(request).writer(request)


async def admin(request: Request, _credentials: _Documented) -> Principal:
    """Dependency: an admin principal."""
    return await guard_of(request).admin(request)


Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
Admin = Annotated[Principal, Depends(admin)]
AUTHENTICATING = (reader, writer, admin)
"""The dependencies that make a route authenticate before it reads its body."""
