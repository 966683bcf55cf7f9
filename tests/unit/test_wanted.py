"""``Wanted``: an event that also tells its subscribers the moment it is set."""

from __future__ import annotations

from workhorse.backends.base import Wanted


def test_subscribers_are_told_each_time_it_is_set_until_they_unsubscribe() -> None:
    wanted = Wanted()
    seen: list[bool] = []
    unsubscribe = wanted.on_set(lambda: seen.append(wanted.is_set()))
    wanted.set()
    wanted.clear()
    wanted.set()
    assert seen == [True, True]  # told after it is set, so a look at it agrees
    unsubscribe()
    wanted.clear()
    wanted.set()
    assert seen == [True, True]
    assert wanted.wait(0)  # still a threading.Event for the threads that wait on it
