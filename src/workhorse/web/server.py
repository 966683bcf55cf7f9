"""Running a FastAPI app under uvicorn so that a stop signal is an orderly exit.

uvicorn drains on SIGTERM/SIGINT (the lifespan stops the worker), then re-raises the
signal, so the process ends "killed by SIGTERM". :func:`run_server` turns that last step
into a normal return: a graceful stop exits with code 0, as process managers expect.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(Exception):
    """The signal uvicorn re-raises once it has shut down."""


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def run_server(
    api: Any, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Serve ``api`` with uvicorn until SIGTERM or SIGINT; return once it has shut down
    gracefully (lifespan shutdown included). Call from the main thread."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(api, host=host, port=port, log_level=log_level, ws="none")
    )
    previous = {signum: signal.signal(signum, _stopped) for signum in _STOP_SIGNALS}
    try:
        server.run()
    except _Stopped:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
