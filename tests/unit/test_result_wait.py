"""A wait for a job's result that is cancelled ends cancelled, whatever else happens in
the same turn of the event loop."""

from __future__ import annotations

import asyncio

import pytest

from _polling import eventually
from workhorse import Workhorse


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_cancelled_result_wait_is_cancelled_even_when_the_job_finishes_with_it(
    turns: int,
) -> None:
    # On Python 3.11 asyncio.wait_for returns the result and drops a cancellation that
    # comes in the turn its result is handed over: the cancelled caller (a request whose
    # client left) then ran on. Each case cancels a few turns after the job finished.
    app = Workhorse("memory://")
    waiting = asyncio.create_task(app._wait_finished(7, timeout=10))
    await eventually(lambda: _holds(7 in app._finish_waiters), what="the wait registered")
    accepted: list[bool] = []
    loop = asyncio.get_running_loop()

    def cancel_after(left: int) -> None:
        if left:
            loop.call_soon(cancel_after, left - 1)
        else:
            accepted.append(waiting.cancel())

    app._jobs_finished([7])
    loop.call_soon(cancel_after, turns)
    await asyncio.wait({waiting}, timeout=5)
    await eventually(lambda: _holds(bool(accepted)), what="the cancel was made")
    assert waiting.done()
    if accepted[0]:
        assert waiting.cancelled(), "a cancellation the task accepted was dropped"
    else:
        assert waiting.exception() is None  # it had already returned: nothing to cancel
    assert 7 not in app._finish_waiters
    await app.aclose()


async def _holds(value: bool) -> bool:
    return value
