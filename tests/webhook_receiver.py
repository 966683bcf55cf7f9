"""A real HTTP receiver for webhook tests: a threaded ``http.server`` on 127.0.0.1 and a
free port, recording every request; it can be told to fail its first requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _polling import eventually


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """Answers ``failures`` requests with HTTP 500, then 204; records them all."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[Received] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.arrived:
                    status = 500 if len(receiver.requests) < receiver.failures else 204
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, status)
                    )
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def accepted(self) -> list[Received]:
        """The requests answered 2xx."""
        with self.arrived:
            return [r for r in self.requests if r.answered < 300]

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """The requests, once ``count`` arrived (fails the test after ``timeout``)."""

        async def arrived() -> list[Received]:
            with self.arrived:
                return list(self.requests)

        return await eventually(
            arrived,
            lambda requests: len(requests) >= count,
            timeout=timeout,
            what=f"{count} webhook requests",
            every=0.01,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def receiving(failures: int = 0) -> Iterator[Receiver]:
    """A running receiver for the duration of the block."""
    receiver = Receiver(failures)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
