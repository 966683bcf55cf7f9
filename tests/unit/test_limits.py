"""Declaring limits, the limit key a job gets, and the admission rule every store uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workhorse import Workhorse
from workhorse.backends.base import ClaimLimits, LimitCaps
from workhorse.limits import Limit, Rate
from workhorse.limits.admission import Admission, Candidate, Exclusions, run_rounds


def test_a_limit_key_comes_from_the_tenant_a_label_or_a_function() -> None:
    by_tenant = Limit("t", key="tenant", concurrency=1)
    by_label = Limit("l", key="label:customer", concurrency=1)
    by_args = Limit("a", key=lambda user, **_: f"user-{user}", concurrency=1)
    shared = Limit("s", concurrency=1)
    args, kwargs = (7,), {"x": 1}
    assert by_tenant.key_for(args, kwargs, tenant="acme", labels={}) == "t:acme"
    assert by_label.key_for(args, kwargs, tenant=None, labels={"customer": "c9"}) == "l:c9"
    assert by_args.key_for(args, kwargs, tenant=None, labels={}) == "a:user-7"
    assert shared.key_for(args, kwargs, tenant=None, labels={}) == "s"
    # No value for the key: the job is not limited by it.
    assert by_tenant.key_for(args, kwargs, tenant=None, labels={}) is None
    assert by_label.key_for(args, kwargs, tenant=None, labels={}) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a:b", "concurrency": 1}, "without ':'"),
        ({"name": "x"}, "needs a concurrency, a rate or both"),
        ({"name": "x", "concurrency": 0}, "at least 1"),
        ({"name": "x", "key": "tenants", "concurrency": 1}, "'tenant', 'label:NAME'"),
        ({"name": "x", "key": "label:", "concurrency": 1}, "'tenant', 'label:NAME'"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limit(**kwargs)  # type: ignore[arg-type]


def test_rates_take_seconds_or_a_timedelta() -> None:
    assert Rate(5, per=timedelta(minutes=1)).seconds == 60.0
    assert Rate(5, per=2).seconds == 2.0
    with pytest.raises(ValueError, match="positive"):
        Rate(5, per=0)
    with pytest.raises(ValueError, match="at least 1"):
        Rate(0, per=1)


def test_tasks_store_their_limit_key_and_the_app_collects_the_caps() -> None:
    app = Workhorse("memory://")
    per_tenant = Limit("per-tenant", key="tenant", concurrency=5, rate=Rate(10, per=60))

    @app.task(limit=per_tenant, concurrency=20)
    def report(n: int) -> int:
        return n

    @app.task(rate_limit=Rate(3, per=timedelta(seconds=1)))
    def ping() -> None: ...

    app.limit_queue("mail", concurrency=4)
    assert report.options(tenant="acme").call(1).to_new_job().meta == {
        "limit_key": "per-tenant:acme"
    }
    assert report.call(1).to_new_job().meta == {}  # no tenant: not limited per tenant
    assert app.limits.claim_limits() == ClaimLimits(
        queues={"mail": 4},
        tasks={report.name: LimitCaps(concurrency=20), ping.name: LimitCaps(rate=3, period=1.0)},
        keys={"per-tenant": LimitCaps(concurrency=5, rate=10, period=60.0)},
    )


def test_an_app_without_limits_claims_the_plain_way() -> None:
    assert Workhorse("memory://").limits.claim_limits() is None


def test_two_different_limits_may_not_share_a_name() -> None:
    app = Workhorse("memory://")
    app.task(name="a", limit=Limit("x", concurrency=1))(lambda: None)
    with pytest.raises(ValueError, match="two different limits"):
        app.task(name="b", limit=Limit("x", concurrency=2))(lambda: None)


LIMITS = ClaimLimits(
    queues={"q": 3},
    tasks={"slow": LimitCaps(concurrency=2), "rated": LimitCaps(rate=2, period=10.0)},
    keys={"tenant": LimitCaps(concurrency=1)},
)


def jobs(*specs: tuple[str, str, str | None]) -> list[Candidate]:
    return [Candidate(i, queue, task, key) for i, (queue, task, key) in enumerate(specs, 1)]


def test_admission_fills_each_bucket_up_to_its_cap_in_order() -> None:
    admission = Admission(LIMITS, wanted=10)
    admission.count({"task:slow": 1}, {})
    offered = jobs(
        ("q", "slow", None),  # 1: slow has room for one more
        ("q", "slow", None),  # 2: slow is full now
        ("q", "other", "tenant:a"),  # 3
        ("q", "other", "tenant:a"),  # 4: tenant a is full
        ("q", "other", "tenant:b"),  # 5: queue q is full now (1, 3, 5)
        ("default", "other", None),  # 6: nothing limits it
    )
    assert [job.id for job in admission.offer(offered)] == [1, 3, 5, 6]
    assert admission.exclusions() == Exclusions(
        queues=("q",), tasks=("slow",), keys=("tenant:a", "tenant:b")
    )


def test_rates_count_starts_and_record_them() -> None:
    admission = Admission(LIMITS, wanted=10)
    admission.count({}, {"task:rated": 1})
    chosen = admission.offer(jobs(("d", "rated", None), ("d", "rated", None)))
    assert [job.id for job in chosen] == [1]
    assert [(s.bucket, s.period) for s in admission.starts_of(chosen)] == [("task:rated", 10.0)]


def test_rounds_read_past_full_buckets_until_the_claim_is_full() -> None:
    waiting = jobs(*[("d", "x", "tenant:a")] * 50, ("d", "x", "tenant:b"), ("d", "x", None))
    admission = Admission(LIMITS, wanted=3)
    reads: list[Exclusions] = []
    claimed: list[int] = []

    def fetch(excluded: Exclusions, wanted: int) -> list[Candidate]:
        reads.append(excluded)
        left = [
            job for job in waiting if job.id not in claimed and job.limit_key not in excluded.keys
        ]
        return left[:wanted]

    run_rounds(admission, fetch, lambda chosen: claimed.extend(job.id for job in chosen))
    assert claimed == [1, 51, 52]
    assert len(reads) == 2  # the second read left tenant a's 49 other jobs out


def test_rounds_stop_when_nothing_is_left() -> None:
    admission = Admission(LIMITS, wanted=5)
    calls: list[int] = []

    def fetch(excluded: Exclusions, wanted: int) -> list[Candidate]:
        calls.append(wanted)
        return []

    run_rounds(admission, fetch, lambda chosen: None)
    assert calls == [5]
    assert admission.remaining == 5


def test_blocked_buckets_are_passed_over() -> None:
    admission = Admission(LIMITS, wanted=5)
    admission.block(["key:tenant:a"])
    chosen = admission.offer(jobs(("d", "x", "tenant:a"), ("d", "x", "tenant:b")))
    assert [job.id for job in chosen] == [2]
