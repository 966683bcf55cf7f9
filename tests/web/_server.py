"""A real uvicorn server on a free port, in a thread of the test process (for the API,
fuzz and browser tests) or in a child process (for crash and signal tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from _polling import wait_until

START_TIMEOUT = 20.0


def free_socket() -> socket.socket:
    """A listening-ready TCP socket bound to a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """Serves an ASGI app with uvicorn in a background thread."""

    def __init__(self, asgi_app: Any) -> None:
        self._sock = free_socket()
        host, port = self._sock.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            asgi_app, lifespan="on", log_level="warning", ws="none", access_log=False
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> ServerThread:
        """Start serving; return once the server accepts requests."""
        self._thread.start()
        wait_until(
            lambda: self.server.started or not self._thread.is_alive(),
            timeout=START_TIMEOUT,
            what="uvicorn to start",
        )
        if not self.server.started:
            raise AssertionError("uvicorn exited during startup")
        return self

    def stop(self) -> None:
        """Shut down gracefully (lifespan shutdown included) and wait for the thread."""
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
        assert not self._thread.is_alive(), "uvicorn did not stop"


class ServerProcess:
    """A server in a child process: ``command`` gets ``--port N`` appended."""

    def __init__(self, command: list[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> None:
        self.command = command
        self.cwd = cwd
        self.env = {**os.environ, **env}
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> ServerProcess:
        """Start the server and wait until it answers HTTP."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.command, "--port", str(port)],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log()}")
            try:
                return httpx.get(self.url + "/openapi.json", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=START_TIMEOUT, what="the server process to answer", every=0.05)
        return self

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the server."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the server to exit; its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the server if it still runs (cleanup)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
