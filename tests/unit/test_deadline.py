"""``within``: an async call's timeout that cancels again while the call runs on, and
tells its own cancellations from anyone else's."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from _polling import until
from workhorse.worker import cancelling
from workhorse.worker.deadline import within


class TimedOut(Exception):
    pass


@pytest.fixture(autouse=True)
def quick_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cancelling, "CANCEL_AGAIN_AFTER", 0.05)


async def stubborn(
    drops: int, dropped: list[int] | None = None, started: asyncio.Event | None = None
) -> str:
    """Awaits forever, dropping its first ``drops`` cancellations (counted in
    ``dropped[0]``)."""
    dropped = [0] if dropped is None else dropped
    if started is not None:
        started.set()
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            dropped[0] += 1
            if dropped[0] > drops:
                raise


async def test_a_call_that_drops_cancellations_times_out_all_the_same() -> None:
    for drops in (0, 1, 3):
        with pytest.raises(TimedOut):
            await within(stubborn(drops), 0.05, timed_out=TimedOut)
        assert _cancel_requests() == 0, "no request of its own is left"


async def test_a_call_that_returns_leaves_no_cancel_request_behind() -> None:
    async def dropping(drops: int) -> str:
        for _ in range(drops):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return "done"

    for drops in (0, 1, 2):  # in time; past the timeout; past a cancellation of its own
        assert await within(dropping(drops), 0.05, timed_out=TimedOut) == "done"
        assert _cancel_requests() == 0


def _cancel_requests() -> int:
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling()


@pytest.mark.parametrize("after_the_timeout", [False, True])
async def test_a_cancellation_from_elsewhere_is_not_a_timeout(after_the_timeout: bool) -> None:
    dropped, started = [0], asyncio.Event()
    timeout = 0.01 if after_the_timeout else 30
    call = stubborn(20, dropped, started)
    waiter = asyncio.create_task(within(call, timeout, timed_out=TimedOut))
    await started.wait()
    if after_the_timeout:  # expired, then cancelled again by within() itself
        await until(lambda: dropped[0] >= 2, what="a cancellation again")
    waiter.cancel()
    # The call drops 20 cancellations: the worker's stop keeps cancelling as well.
    while not waiter.done():
        waiter.cancel()
        await asyncio.wait({waiter}, timeout=0.01)
    with pytest.raises(asyncio.CancelledError):
        waiter.result()
