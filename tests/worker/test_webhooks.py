"""Webhooks end to end in a worker: a local HTTP receiver gets each finished job's
outcome, signed with the tenant's secret, retried until it accepts; every attempt is in
the delivery log."""

from __future__ import annotations

import orjson
import pytest

from webhook_receiver import receiving
from workhorse import Backoff, JobState, Retry, Workhorse
from workhorse.webhooks import SIGNATURE_HEADER, verify_signature
from workhorse.webhooks.event import DELIVER_TASK, WEBHOOK_EVENT, WEBHOOK_FOR, WEBHOOK_URL

from ._support import eventually, job_in_state

QUICK_RETRY = Retry(max_attempts=10, backoff=Backoff(base=0.05, factor=1.0, max=0.05, jitter=0))


@pytest.fixture(autouse=True)
def quick_retries(app: Workhorse) -> None:
    app.webhooks.configure(retry=QUICK_RETRY, timeout=5.0)


async def test_a_finished_job_is_posted_signed_with_the_tenant_secret(app: Workhorse) -> None:
    with receiving() as receiver:

        @app.task(name="tests.add", webhook=receiver.url)
        def add(a: int, b: int) -> int:
            return a + b

        secret = await app.webhooks.create_secret("acme")
        other = await app.webhooks.create_secret("globex")
        async with app.worker():
            job = await add.options(tenant="acme").enqueue(2, 3)
            assert await job.result(timeout=10) == 5
            (request,) = await receiver.wait_for(1)
    assert request.path == "/hooks"
    signature = request.headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=")
    assert verify_signature(secret, request.body, signature)
    assert not verify_signature(other, request.body, signature)
    assert not verify_signature(secret, request.body + b" ", signature)
    event = orjson.loads(request.body)
    assert {k: event[k] for k in ("id", "task", "tenant", "state", "result", "error")} == {
        "id": job.id,
        "task": "tests.add",
        "tenant": "acme",
        "state": "completed",
        "result": 5,
        "error": None,
    }
    assert request.headers["X-Workhorse-Event"] == "job.completed"


async def test_a_receiver_failing_twice_gets_the_delivery_on_the_third_attempt(
    app: Workhorse,
) -> None:
    with receiving(failures=2) as receiver:

        @app.task(name="tests.fails", retry=1)
        def fails() -> None:
            raise RuntimeError("out of paper")

        await app.webhooks.create_secret(None)
        async with app.worker():
            job = await fails.options(webhook=receiver.url).enqueue()
            requests = await receiver.wait_for(3)
            log = await eventually(
                lambda: app.webhooks.deliveries(job.id),
                lambda attempts: len(attempts) == 3,
                what="three logged delivery attempts",
            )
    assert [r.answered for r in requests] == [500, 500, 204]
    assert len({r.body for r in requests}) == 1  # the same event each time
    assert len({r.headers["X-Workhorse-Delivery"] for r in requests}) == 1
    event = orjson.loads(requests[-1].body)
    assert event["state"] == "failed"
    assert event["error"] == {"type": "RuntimeError", "message": "out of paper"}
    assert [(a.attempt, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 204)]
    assert log[0].error == "the receiver answered HTTP 500"
    assert log[2].error is None
    assert {a.url for a in log} == {receiver.url}
    delivery = await app.get_job(log[0].delivery_job_id)
    assert (delivery.state.value, delivery.attempt) == ("completed", 3)


async def test_without_a_secret_the_delivery_fails_and_says_how_to_make_one(
    app: Workhorse,
) -> None:
    with receiving() as receiver:

        @app.task(name="tests.noop", webhook=receiver.url)
        def noop() -> None: ...

        async with app.worker():
            job = await noop.options(tenant="initech").enqueue()
            log = await eventually(
                lambda: app.webhooks.deliveries(job.id),
                lambda attempts: len(attempts) >= 1,
                what="a logged delivery attempt",
            )
        assert receiver.requests == []
    assert log[0].status_code is None
    assert "workhorse webhooks secret --tenant initech" in (log[0].error or "")


async def test_an_unreachable_receiver_is_logged_and_retried(app: Workhorse) -> None:
    with receiving() as receiver:
        url = receiver.url
    # The receiver is gone: nothing listens on that port any more.

    @app.task(name="tests.noop", webhook=url)
    def noop() -> None: ...

    await app.webhooks.create_secret(None)
    async with app.worker():
        job = await noop.enqueue()
        log = await eventually(
            lambda: app.webhooks.deliveries(job.id),
            lambda attempts: len(attempts) >= 2,
            what="two logged delivery attempts",
        )
    assert log[0].status_code is None
    assert "ConnectError" in (log[0].error or "")


async def test_a_forged_delivery_job_sends_nothing_and_logs_nothing(app: Workhorse) -> None:
    """A delivery reads the URL and the event from what the store recorded when the job
    ended, for a job of its own tenant: delivery jobs made by hand, with chosen
    arguments or even chosen meta, send nothing and log nothing under anybody's job."""
    with receiving() as receiver:

        @app.task(name="tests.noop", webhook=receiver.url)
        def noop() -> None: ...

        await app.webhooks.create_secret("acme")
        await app.webhooks.create_secret("globex")
        deliver = app.get_task(DELIVER_TASK)
        async with app.worker():
            victim = await noop.options(tenant="globex").enqueue()
            own = await noop.options(tenant="acme").enqueue()
            genuine = await receiver.wait_for(2)
            forged = {"id": victim.id, "tenant": "globex", "state": "completed", "result": "x"}
            recorded = {WEBHOOK_FOR: victim.id, WEBHOOK_URL: receiver.url}
            attempts = [
                # The arguments the delivery task once trusted.
                deliver.options(tenant="acme").call(receiver.url, forged),
                # The store's own record, copied for another tenant's job.
                deliver.options(
                    tenant="acme",
                    meta={**recorded, WEBHOOK_EVENT: {**forged, "tenant": "acme"}},
                ).call(),
                # One's own job, sent somewhere its webhook does not point.
                deliver.options(
                    tenant="acme",
                    meta={
                        WEBHOOK_FOR: own.id,
                        WEBHOOK_URL: "http://127.0.0.1:9/internal",
                        WEBHOOK_EVENT: {"id": own.id, "tenant": "acme", "state": "completed"},
                    },
                ).call(),
            ]
            made = await app.enqueue_many(attempts)
            ended = [await job_in_state(app, job.id, JobState.FAILED) for job in made]
    assert len(receiver.requests) == len(genuine) == 2
    assert {orjson.loads(r.body)["id"] for r in receiver.requests} == {victim.id, own.id}
    for job in ended:
        assert job.attempt == 1, "a refused delivery is not retried"
        assert job.error is not None
        assert "nothing sent" in job.error.message
    forged_ids = {job.id for job in made}
    for reported in (victim.id, own.id):
        log = await app.webhooks.deliveries(reported)
        assert [a.status_code for a in log] == [204]
        assert not forged_ids & {a.delivery_job_id for a in log}


def test_webhook_urls_must_be_http(app: Workhorse) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        app.task(name="tests.bad", webhook="ftp://example.com")(lambda: None)
    task = app.task(name="tests.ok")(lambda: None)
    with pytest.raises(ValueError, match="http:// or https://"):
        task.options(webhook="/relative")
