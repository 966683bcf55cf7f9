"""A thread pool whose threads cannot hold the process hostage, nor be used up by calls
nobody waits for.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so
one sync task that never returns (it timed out, or was cancelled, and was abandoned)
would keep a stopped worker process alive forever. Here the threads are daemons: once the
worker has stopped and released that job, the process can exit and the thread dies with it.

An abandoned call still holds its thread. The pool counts such calls and may start one
more thread for each until it returns, so ``max_workers`` threads always remain for new
work however many calls were abandoned.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadPool(Executor):
    """Up to ``max_workers`` daemon threads, started on demand and reused when idle."""

    def __init__(self, max_workers: int, *, name: str = "workhorse-sync") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False
        self._abandoned = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; raises ``RuntimeError`` after shutdown."""
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit work to a pool that was shut down")
            self._work.put((future, fn, args, kwargs))
            size = self._max_workers + self._abandoned
            if not self._idle.acquire(blocking=False) and len(self._threads) < size:
                thread = threading.Thread(
                    target=self._serve,
                    name=f"{self._name}-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        return future

    @property
    def abandoned_calls(self) -> int:
        """Calls abandoned by their caller that still run."""
        return self._abandoned

    def abandoned(self, future: Future[Any]) -> int:
        """The call of ``future`` runs on but nobody waits for it: allow one more thread
        until it returns. Returns how many threads the pool may have now."""
        with self._lock:
            self._abandoned += 1
            size = self._max_workers + self._abandoned
        future.add_done_callback(self._returned)
        return size

    def _returned(self, future: Future[Any]) -> None:
        with self._lock:
            self._abandoned -= 1

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                self._work.put(None)  # let the next thread see the end too
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, fn, args, kwargs  # drop references while idle
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; ``cancel_futures`` drops what has not started; ``wait``
        joins the threads (do not, when a call may never return)."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._work.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()
