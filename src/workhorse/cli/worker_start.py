"""``workhorse worker start APP``: run a worker process until SIGTERM/SIGINT or a stop
requested through the store, then drain it and exit 0."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from workhorse.app import Workhorse
from workhorse.backends import redact_url
from workhorse.cli._app import UrlOption, load_app
from workhorse.cli._errors import CliError
from workhorse.cli._output import err_console
from workhorse.cli._reachable import ensure_reachable
from workhorse.retry import Retry
from workhorse.settings import ENV_PREFIX, WorkerSettings, override_retry

_DEFAULTS = WorkerSettings()
_RETRY_DEFAULTS = Retry()
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _knob(name: str, help: str, *short: str, metavar: str = "SECONDS") -> Any:
    """The option for the :class:`WorkerSettings` field ``name``: also read from
    ``WORKHORSE_<NAME>``, its default shown in ``--help``; unset means the app's setting."""
    default = getattr(_DEFAULTS, name)
    return typer.Option(
        "--" + name.replace("_", "-"),
        *short,
        envvar=ENV_PREFIX + name.upper(),
        metavar=metavar,
        help=help,
        show_default=str(default if default is not None else "all"),
        rich_help_panel="Worker settings",
    )


def _retry_knob(name: str, help: str, default: float, metavar: str) -> Any:
    """The option for the app-wide retry default ``name``. Not read from the environment
    here: the app itself reads ``WORKHORSE_<NAME>`` when its code sets no ``retry=``, so
    that every process using the app (enqueuers too) agrees; the flag overrides both."""
    return typer.Option(
        "--" + name.replace("_", "-"),
        metavar=metavar,
        help=f"{help} Unset: the app's (retry= in code, else ${ENV_PREFIX}{name.upper()}).",
        show_default=f"{default:g}",
        rich_help_panel="Retry defaults (for tasks that declare no retry)",
    )


def start(
    app: Annotated[
        str,
        typer.Argument(
            help="Your app as module:attribute, e.g. myproject.jobs:app.",
            show_default=False,
        ),
    ],
    concurrency: Annotated[
        int | None, _knob("concurrency", "Jobs run at the same time.", "-c", metavar="N")
    ] = None,
    queues: Annotated[
        str | None,
        _knob("queues", "Comma-separated queues to take jobs from.", "-Q", metavar="A,B"),
    ] = None,
    lease: Annotated[
        float | None,
        _knob("lease", "How long a claim lives without a heartbeat (crash recovery time)."),
    ] = None,
    heartbeat_interval: Annotated[
        float | None, _knob("heartbeat_interval", "How often leases are renewed.")
    ] = None,
    poll_interval: Annotated[
        float | None, _knob("poll_interval", "Longest wait between looks for new work.")
    ] = None,
    shutdown_grace: Annotated[
        float | None,
        _knob("shutdown_grace", "On stop, how long running jobs may finish before release."),
    ] = None,
    cancel_grace: Annotated[
        float | None,
        _knob("cancel_grace", "How long a cancelled running job may wind down."),
    ] = None,
    reclaim_interval: Annotated[
        float | None, _knob("reclaim_interval", "How often expired leases are reclaimed.")
    ] = None,
    prune_interval: Annotated[
        float | None, _knob("prune_interval", "How often finished jobs past their TTL go.")
    ] = None,
    leader_ttl: Annotated[
        float | None, _knob("leader_ttl", "How long maintenance leadership lasts unrenewed.")
    ] = None,
    processes: Annotated[
        int | None,
        _knob(
            "processes", "Process pool size for executor='process' tasks (0: CPUs).", metavar="N"
        ),
    ] = None,
    threads: Annotated[
        int | None,
        _knob("threads", "Thread pool size for sync tasks (0: concurrency + 4).", metavar="N"),
    ] = None,
    max_attempts: Annotated[
        int | None,
        _retry_knob(
            "max_attempts",
            "Attempts in all, for jobs this process enqueues (cron ticks, jobs enqueued by "
            "tasks); jobs keep what their enqueuer stored.",
            _RETRY_DEFAULTS.max_attempts,
            "N",
        ),
    ] = None,
    backoff_base: Annotated[
        float | None,
        _retry_knob(
            "backoff_base",
            "Wait after a failed first attempt.",
            _RETRY_DEFAULTS.backoff.base,
            "SECONDS",
        ),
    ] = None,
    backoff_factor: Annotated[
        float | None,
        _retry_knob(
            "backoff_factor",
            "Each further wait is this many times the previous.",
            _RETRY_DEFAULTS.backoff.factor,
            "X",
        ),
    ] = None,
    backoff_max: Annotated[
        float | None,
        _retry_knob(
            "backoff_max", "Longest wait between attempts.", _RETRY_DEFAULTS.backoff.max, "SECONDS"
        ),
    ] = None,
    backoff_jitter: Annotated[
        float | None,
        _retry_knob(
            "backoff_jitter",
            "Random spread of each wait, a fraction (0.2: +/-20 %).",
            _RETRY_DEFAULTS.backoff.jitter,
            "FRACTION",
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar=ENV_PREFIX + "LOG_LEVEL",
            help=f"One of {', '.join(_LOG_LEVELS)}.",
            metavar="LEVEL",
        ),
    ] = "info",
    url: UrlOption = None,
) -> None:
    """Run a worker for APP until SIGTERM/SIGINT (a second one skips the grace) or
    'workhorse worker stop'. Running jobs get the shutdown grace to finish; the rest
    go back to the queue. Exits 0 after a graceful stop."""
    level = log_level.lower()
    if level not in _LOG_LEVELS:
        raise CliError(f"--log-level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
    found = load_app(app)
    if url:
        found.url = url
    settings = found.settings.replace(
        concurrency=concurrency,
        queues=_queues(queues),
        lease=lease,
        heartbeat_interval=heartbeat_interval,
        poll_interval=poll_interval,
        shutdown_grace=shutdown_grace,
        cancel_grace=cancel_grace,
        reclaim_interval=reclaim_interval,
        prune_interval=prune_interval,
        leader_ttl=leader_ttl,
        processes=processes,
        threads=threads,
    )
    found.default_retry = override_retry(
        found.default_retry,
        {
            "max_attempts": max_attempts,
            "backoff_base": backoff_base,
            "backoff_factor": backoff_factor,
            "backoff_max": backoff_max,
            "backoff_jitter": backoff_jitter,
        },
        lambda name: "--" + name.replace("_", "-"),
    )
    _configure_logging(level)
    asyncio.run(_serve(found, settings, app))


def _queues(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not names:
        raise CliError(f"--queues names no queue: {raw!r}")
    return names


async def _serve(app: Workhorse, settings: WorkerSettings, spec: str) -> None:
    from workhorse.worker import Worker

    await ensure_reachable(app)
    worker = Worker(app, settings)
    # Until run() installs its own handlers, a SIGTERM/SIGINT during start-up still means
    # "stop gracefully" (the worker stops as soon as it has started) rather than death.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.request_stop)
    try:
        await worker.start()
        tasks = escape(", ".join(sorted(app.tasks)) or "none registered!")
        err_console.print(
            f"[bold green]worker {worker.id}[/] serving [bold]{escape(spec)}[/] on "
            f"{escape(redact_url(app.url))} [dim](pid {os.getpid()}, concurrency "
            f"{settings.concurrency}, lease {settings.lease:g}s; tasks: {tasks})[/]",
            soft_wrap=True,
            highlight=False,
        )
        await worker.run(handle_signals=True)
    finally:
        await app.aclose()


def _configure_logging(level: str) -> None:
    """Log lines on stderr: rich ones in a terminal, plain timestamped ones otherwise."""
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
