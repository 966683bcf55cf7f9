"""The process pool of ``executor="process"`` tasks: spawned children that run one call
each at a time.

``ProcessPoolExecutor`` does not say which child runs which call, so a call given up on
(its timeout, a cancellation) would keep its child busy until it returns, and calls
queued behind it would wait with their timeouts running. Here each child is a
one-process executor of its own: a call starts only once a child is free (that is when
its timeout starts), and a call that is given up on has its child terminated, so its
slot comes back at once; a fresh child replaces it on the next call. A child that dies
(OOM, a segfault) fails its call with ``BrokenProcessPool`` and takes no other call
with it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from typing import Any

from workhorse.worker.offloop import OffLoopCall

logger = logging.getLogger("workhorse.worker")


class ProcessPool:
    """Up to ``size`` children (0: one per CPU), spawned on demand and reused."""

    def __init__(self, size: int) -> None:
        self.size = size or os.cpu_count() or 1
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[ProcessPoolExecutor] = []
        self._children: set[ProcessPoolExecutor] = set()
        self._free: asyncio.Semaphore | None = None
        self._closed = False
        self.terminated = 0
        """Children terminated because their call was given up on (for tests)."""

    def start(self, fn: Callable[[], Any], label: str) -> OffLoopCall:
        """Run ``fn()`` (picklable: a function found by name) in a child."""
        loop = asyncio.get_running_loop()
        call = OffLoopCall(label, loop.create_future())
        call.result = loop.create_task(self._run(fn, call))
        return call

    async def _run(self, fn: Callable[[], Any], call: OffLoopCall) -> Any:
        if self._free is None:
            self._free = asyncio.Semaphore(self.size)
        async with self._free:
            if self._closed:
                raise RuntimeError("the process pool was shut down")
            child = self._idle.pop() if self._idle else self._spawn()
            call.started.set_result(None)
            future = child.submit(fn)
            try:
                result = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                self.terminated += 1
                self._terminate(child)
                logger.info("%s: %s; its child process was terminated", call.label, call.why)
                raise
            except BrokenProcessPool:
                self._discard(child)  # the child died: the next call gets a fresh one
                raise
            except BaseException:
                self._idle.append(child)  # the call raised; the child is fine
                raise
            self._idle.append(child)
            return result

    def _spawn(self) -> ProcessPoolExecutor:
        child = ProcessPoolExecutor(max_workers=1, mp_context=self._context)
        self._children.add(child)
        return child

    def _terminate(self, child: ProcessPoolExecutor) -> None:
        # No public way to stop a running call before Python 3.14 (terminate_workers);
        # the executor's child is reachable only through _processes, which shutdown()
        # forgets: terminate first.
        for process in list((getattr(child, "_processes", None) or {}).values()):
            process.terminate()
        self._discard(child)

    def _discard(self, child: ProcessPoolExecutor) -> None:
        self._children.discard(child)
        child.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Terminate every child, busy or idle (abandoned calls included)."""
        self._closed = True
        self._idle.clear()
        for child in list(self._children):
            self._terminate(child)
