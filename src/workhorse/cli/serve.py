"""``workhorse serve APP``: the HTTP API, the dashboard and ``/metrics`` under uvicorn,
with an in-process worker on request."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from workhorse.cli._app import UrlOption, load_app
from workhorse.cli._errors import CliError
from workhorse.cli._output import err_console
from workhorse.cli._reachable import ensure_reachable

_LOG_LEVELS = ("debug", "info", "warning", "error")


def serve_command(
    app: Annotated[
        str,
        typer.Argument(
            help="Your app as module:attribute, e.g. myproject.jobs:app.", show_default=False
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8000,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker", help="Also run a worker in the server process (drained on stop)."
        ),
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", metavar="N", help="Jobs the in-process worker runs at once."
        ),
    ] = None,
    max_payload: Annotated[
        int,
        typer.Option("--max-payload", metavar="BYTES", help="Largest request body accepted."),
    ] = 256 * 1024,
    trusted_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-origin",
            metavar="ORIGIN",
            help="An origin the dashboard accepts besides its own host, e.g. "
            "https://jobs.example.com behind a proxy that rewrites Host (repeatable; "
            "default $WORKHORSE_TRUSTED_ORIGINS, comma-separated).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", metavar="LEVEL", help=f"One of {', '.join(_LOG_LEVELS)}.")
    ] = "info",
    url: UrlOption = None,
) -> None:
    """Serve the HTTP API, the dashboard (/dashboard) and Prometheus metrics (/metrics).

    Every route but /healthz and /readyz needs an API key: make one with
    'workhorse keys create --tenant NAME' (or --admin). Stops gracefully on SIGTERM."""
    if log_level.lower() not in _LOG_LEVELS:
        raise CliError(f"--log-level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
    if concurrency is not None and not with_worker:
        raise CliError("--concurrency needs --with-worker")
    found = load_app(app)
    if url:
        found.url = url
    # Before serving: a store that cannot be reached fails here, in one line with its
    # reason, not as a server whose every request fails (or after the pool's retries).
    asyncio.run(ensure_reachable(found))
    from workhorse.web import create_app, run_server

    api = create_app(
        found,
        with_worker=with_worker,
        concurrency=concurrency,
        max_payload_bytes=max_payload,
        trusted_origins=trusted_origin,
    )
    worker = " with a worker" if with_worker else ""
    err_console.print(
        f"[bold green]workhorse[/] serving [bold]{app}[/]{worker} on http://{host}:{port} "
        f"[dim](dashboard: /dashboard, docs: /docs)[/]",
        soft_wrap=True,
        highlight=False,
    )
    run_server(api, host=host, port=port, log_level=log_level.lower())
