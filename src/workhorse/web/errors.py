"""Every error the HTTP API returns has one shape::

    {"error": {"type": "not_found", "message": "job 7 not found"}}

(validation errors add ``"details"``). This module maps exceptions to that shape.
"""

from __future__ import annotations

import http
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from workhorse.errors import (
    BackendUnavailableError,
    CorruptJobError,
    JobNotFoundError,
    JobStateError,
    SerializationError,
    UnknownTaskError,
)


class ApiError(Exception):
    """An error to answer with: HTTP status, a machine-readable type and a message."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = dict(headers or {})


class PayloadTooLarge(StarletteHTTPException):
    """The request body is over the limit. An HTTPException so that FastAPI's body
    reader lets it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


def error_body(type: str, message: str, details: Sequence[Any] | None = None) -> dict[str, Any]:
    """The JSON document of an error."""
    error: dict[str, Any] = {"type": type, "message": message}
    if details is not None:
        error["details"] = list(details)
    return {"error": error}


def error_response(
    status: int,
    type: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: Sequence[Any] | None = None,
) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(
        error_body(type, message, details), status_code=status, headers=dict(headers or {})
    )


def _status_type(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    details: list[dict[str, Any]] = [
        {
            "loc": [part if isinstance(part, int | str) else str(part) for part in err["loc"]],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    if details:
        first = details[0]
        where = ".".join(str(part) for part in first["loc"])
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
    else:
        message = "invalid request"
    return error_response(422, "validation_error", message, details=details)


_DOMAIN_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (JobNotFoundError, 404, "not_found"),
    (UnknownTaskError, 422, "unknown_task"),
    (SerializationError, 422, "invalid_arguments"),
    (JobStateError, 409, "conflict"),
    (BackendUnavailableError, 503, "unavailable"),
    # A stored row that does not decode is the server's fault, not the request's (no
    # 4xx), and asking again will not help (no 503): a 500, typed and naming the job
    # and the column so that an operator knows which row to repair or purge.
    (CorruptJobError, 500, "corrupt_job"),
)


def response_for(exc: Exception) -> JSONResponse | None:
    """The JSON error response for ``exc``, or None for an unexpected exception."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.type, exc.message, headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, StarletteHTTPException):
        if isinstance(exc.__cause__, PayloadTooLarge):
            exc = exc.__cause__
        return error_response(
            exc.status_code, _status_type(exc.status_code), str(exc.detail), headers=exc.headers
        )
    for kind, status, type_ in _DOMAIN_ERRORS:
        if isinstance(exc, kind):
            return error_response(status, type_, str(exc))
    return None


def internal_error() -> JSONResponse:
    """The response to an unexpected exception (details go to the log, not the client)."""
    return error_response(500, "internal_error", "internal server error")
