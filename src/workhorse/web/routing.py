"""The route class of every workhorse endpoint: a body size limit (declared length AND
bytes actually streamed) and JSON errors, wherever the router is mounted.

A custom route class rather than middleware or app exception handlers, because a router
included in someone else's app cannot install either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import Message, Receive

from workhorse.web.errors import ApiError, PayloadTooLarge, internal_error, response_for
from workhorse.web.guard import AUTHENTICATING, Guard, attach

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest request body the API accepts by default (256 KiB)."""

logger = logging.getLogger("workhorse.web")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    if size > limit:
        raise PayloadTooLarge(limit)


def _counting(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises once more than ``limit`` body bytes have arrived, whatever
    the request declared (chunked bodies declare nothing)."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(limit)
        return message

    return wrapped


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def route_class(
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, guard: Guard | None = None
) -> type[APIRoute]:
    """An ``APIRoute`` subclass enforcing ``max_payload_bytes`` and answering errors as
    ``{"error": {"type", "message"}}``.

    Routes that depend on :data:`~workhorse.web.guard.AUTHENTICATING` authenticate with
    ``guard`` before anything else, the body included: a request without valid
    credentials learns nothing but 401 (not even that its JSON was malformed)."""
    if max_payload_bytes < 0:
        raise ValueError("max_payload_bytes must be zero or more")

    class WorkhorseRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()
            needs_auth = any(call in AUTHENTICATING for call in _calls(self.dependant))

            async def guarded(request: Request) -> Response:
                try:
                    if guard is not None:
                        attach(request, guard)
                        if needs_auth:
                            await guard.principal(request)
                    _check_declared_length(request, max_payload_bytes)
                    limited = Request(request.scope, _counting(request.receive, max_payload_bytes))
                    return await handler(limited)
                except Exception as exc:
                    response = response_for(exc)
                    if response is None:
                        logger.exception("unexpected error in %s %s", request.method, self.path)
                        return internal_error()
                    return response

            return guarded

    return WorkhorseRoute
