"""The HTTP side of workhorse (``pip install 'workhorse[web]'``): a FastAPI router to
mount in your own app, a standalone app for ``workhorse serve``, API keys bound to
tenants, a live dashboard, Prometheus metrics, and a FastAPI lifespan that runs a
worker in-process::

    from fastapi import FastAPI
    from workhorse.web import create_router, worker_lifespan

    lifespan = worker_lifespan(jobs, concurrency=4)
    api = FastAPI(lifespan=lifespan)
    api.include_router(create_router(jobs, worker=lifespan), prefix="/workhorse")
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import pydantic  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra only
    from workhorse.errors import MissingDependencyError

    raise MissingDependencyError("workhorse.web (the HTTP API and dashboard)", "web") from exc

from workhorse.web.api import create_app, create_router
from workhorse.web.auth import (
    ApiKeyAuthenticator,
    Authenticator,
    IssuedKey,
    Principal,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from workhorse.web.lifespan import (
    Enqueuer,
    WorkerLifespan,
    enqueuer,
    get_workhorse,
    worker_lifespan,
)
from workhorse.web.server import run_server

__all__ = [
    "ApiKeyAuthenticator",
    "Authenticator",
    "Enqueuer",
    "IssuedKey",
    "Principal",
    "WorkerLifespan",
    "create_api_key",
    "create_app",
    "create_router",
    "enqueuer",
    "get_workhorse",
    "list_api_keys",
    "revoke_api_key",
    "run_server",
    "worker_lifespan",
]
