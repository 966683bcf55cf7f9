"""Runs the async core from sync code: one event loop in a daemon thread per app.

Sync twins (``enqueue_sync``, ``result_sync``...) are written once, by :func:`sync_twin`,
never by hand.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Portal:
    """An event loop in a background thread that sync callers submit coroutines to."""

    def __init__(self, name: str = "workhorse-portal") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The portal's loop (started on first use)."""
        return self._ensure()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal loop and wait for its result."""
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a *_sync method was called from inside the workhorse portal")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result()

    def close(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()


class HasPortal(Protocol):
    """Anything that can reach its app's portal."""

    @property
    def _portal(self) -> Portal: ...


S = TypeVar("S", bound=HasPortal)


def sync_twin(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], T]:
    """Make the blocking twin of an async method: it runs on the owner's portal."""

    @functools.wraps(method)
    def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._portal.run(method(self, *args, **kwargs))

    twin.__doc__ = f"Blocking version of ``{method.__name__}`` for sync code." + (
        f"\n\n{method.__doc__}" if method.__doc__ else ""
    )
    return twin
