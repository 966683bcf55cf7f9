"""A TCP proxy between a backend and PostgreSQL, to take the database away (every
connection dropped, new ones refused) and bring it back, or to lose one reply (the
server did the work; the client never hears of it), without touching the server other
tests share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Proxy:
    """Forwards 127.0.0.1:``port`` to ``host``:``target_port`` until cut."""

    def __init__(self, host: str, target_port: int) -> None:
        self._host = host
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._lose_reply = False
        self.port = 0
        self.replies_lost = 0
        """How many replies were dropped (with their connection) so far."""

    async def start(self) -> None:
        """Listen (again, on the same port after a cut)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Drop every connection and refuse new ones, like a server that went down."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # A connection accepted just before the close starts its task afterwards: give
        # such tasks a turn to see the cut and close their end.
        await asyncio.sleep(0)
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def lose_next_reply(self) -> None:
        """Drop the next bytes the server sends on any connection, and hang that
        connection up: whatever the client asked was done, but its answer is lost."""
        self._lose_reply = True

    def _reply_lost(self) -> bool:
        if not self._lose_reply:
            return False
        self._lose_reply = False
        self.replies_lost += 1
        return True

    async def close(self) -> None:
        """Stop for good."""
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            if self._server is None:
                return  # accepted just before a cut
            up_reader, upstream = await asyncio.open_connection(self._host, self._target_port)
            await asyncio.gather(
                _pump(reader, upstream), _pump(up_reader, writer, drop=self._reply_lost)
            )
        except (OSError, _HungUp):
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await stream.wait_closed()
            self._pipes.discard(task)


class _HungUp(Exception):
    """A reply was dropped: close both ends."""


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    drop: Callable[[], bool] = lambda: False,
) -> None:
    try:
        while data := await reader.read(65536):
            if drop():
                raise _HungUp
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()
