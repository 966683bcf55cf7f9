from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from workhorse import Retry, SerializationError, Task, Workhorse


@pytest.fixture
def app() -> Workhorse:
    return Workhorse("memory://")


def test_names_are_stable_and_explicit_names_win(app: Workhorse) -> None:
    @app.task
    async def ping() -> str:
        return "pong"

    @app.task(name="billing.charge")
    def charge(amount: int) -> int:
        return amount

    assert ping.name == f"{__name__}.test_names_are_stable_and_explicit_names_win.<locals>.ping"
    assert charge.name == "billing.charge"
    assert app.get_task("billing.charge") is charge
    assert charge(5) == 5  # calling a task calls the function


def test_two_functions_cannot_share_a_name(app: Workhorse) -> None:
    @app.task(name="dup")
    def one() -> None: ...

    with pytest.raises(ValueError, match="already registered"):

        @app.task(name="dup")
        def two() -> None: ...


def test_executor_follows_the_function_kind(app: Workhorse) -> None:
    @app.task
    async def a() -> None: ...

    @app.task
    def s() -> None: ...

    assert (a.executor, s.executor) == ("async", "thread")
    with pytest.raises(ValueError, match="async function"):
        app.task(executor="process")(a.fn)


@dataclass
class Point:
    x: int


@pytest.mark.parametrize("bad", [object(), datetime.now(UTC), Point(1), {1: "non-str key"}, {1, 2}])
def test_arguments_that_are_not_json_raise_before_anything_is_stored(
    app: Workhorse, bad: object
) -> None:
    @app.task
    def store(value: object) -> None: ...

    with pytest.raises(SerializationError, match="cannot be stored as JSON"):
        store.call(bad).to_new_job()


Keep = Task[[object], None]
ENQUEUES: dict[str, Callable[[Workhorse, Keep], Awaitable[object]]] = {
    "enqueue": lambda app, keep: keep.enqueue(Point(1)),
    "enqueue_sync": lambda app, keep: asyncio.to_thread(keep.enqueue_sync, Point(1)),
    "by name": lambda app, keep: app.enqueue("tests.keep", kwargs={"value": {1, 2}}),
    # A good call first: the batch is all or nothing.
    "enqueue_many": lambda app, keep: app.enqueue_many(
        [keep.call(1), keep.call(datetime.now(UTC))]
    ),
}


@pytest.mark.parametrize("how", ENQUEUES)
async def test_no_way_of_enqueuing_stores_arguments_that_are_not_json(
    store_url: str, how: str
) -> None:
    app = Workhorse(store_url)

    @app.task(name="tests.keep")
    def keep(value: object) -> None: ...

    try:
        with pytest.raises(SerializationError, match=r"arguments of task 'tests\.keep'"):
            await ENQUEUES[how](app, keep)
        assert await app.list_jobs() == []
    finally:
        await app.aclose()
        app.close()


def test_new_job_merges_task_defaults_and_call_options(app: Workhorse) -> None:
    @app.task(queue="mail", priority=3, retry=Retry(max_attempts=7), timeout=9, labels={"a": "1"})
    def send(to: str, *, urgent: bool = False) -> None: ...

    row = (
        send.options(priority=10, delay=timedelta(minutes=1), labels={"b": "2"})
        .call("x@y.z", urgent=True)
        .to_new_job()
    )
    assert row.task == send.name
    assert orjson.loads(row.args) == ["x@y.z"]
    assert orjson.loads(row.kwargs) == {"urgent": True}
    assert (row.queue, row.priority, row.max_attempts, row.timeout) == ("mail", 10, 7, 9)
    assert row.delay == 60
    assert row.labels == {"a": "1", "b": "2"}


@pytest.mark.parametrize("retry", [None, 5, Retry(max_attempts=2)])
def test_a_call_without_options_gives_the_row_of_options_that_change_nothing(
    app: Workhorse, retry: Retry | int | None
) -> None:
    # Calls without options take a shorter path to their row: it must be the same row.
    @app.task(queue="q", priority=4, retry=retry, timeout=3, tenant="acme")
    def send(to: str, *, urgent: bool = False) -> None: ...

    @app.task
    def ping() -> None: ...

    assert send.call("a", urgent=True).to_new_job() == (
        send.options().call("a", urgent=True).to_new_job()
    )
    assert send.call("a").to_new_job() == send.options().call("a").to_new_job()
    assert ping.call().to_new_job() == ping.options().call().to_new_job()
    row = send.call("a", urgent=True).to_new_job()
    assert (row.args, row.kwargs) == ('["a"]', '{"urgent":true}')
    assert (row.queue, row.tenant) == ("q", "acme")
    assert row.max_attempts == send.retry.max_attempts


def test_unique_keys_derive_from_arguments(app: Workhorse) -> None:
    @app.task(unique=True)
    def sync_user(user_id: int) -> None: ...

    @app.task(unique=lambda user_id: f"user-{user_id}")
    def sync_user_named(user_id: int) -> None: ...

    first = sync_user.call(1).to_new_job().unique_key
    assert first == sync_user.call(1).to_new_job().unique_key
    assert first != sync_user.call(2).to_new_job().unique_key
    assert sync_user_named.call(7).to_new_job().unique_key == f"{sync_user_named.name}:user-7"
    explicit = sync_user.options(unique_key="mine").call(1).to_new_job()
    assert explicit.unique_key == "mine"


def test_run_at_must_be_timezone_aware(app: Workhorse) -> None:
    @app.task
    def later() -> None: ...

    with pytest.raises(ValueError, match="timezone-aware"):
        later.options(run_at=datetime(2030, 1, 1)).call().to_new_job()


def test_labels_must_be_strings(app: Workhorse) -> None:
    @app.task
    def labelled() -> None: ...

    with pytest.raises(TypeError, match="labels"):
        labelled.options(labels={"n": 1}).call().to_new_job()  # type: ignore[dict-item]


async def test_a_connection_option_reaches_the_store_and_survives_more_options(
    app: Workhorse,
) -> None:
    @app.task(name="receipt")
    async def receipt(email: str) -> None: ...

    session = object()
    configured = receipt.options(connection=session).options(priority=5)
    # The memory store cannot join a caller's transaction, and says so: the connection
    # travelled from the option to the store.
    with pytest.raises(ValueError, match="caller's transaction"):
        await configured.enqueue("a@x.io")
    assert await receipt.options(priority=5).enqueue("a@x.io") is not None
