"""The running job's logger: every message names its job, whatever the formatter, and
records keep the job's attributes for structured logging."""

from __future__ import annotations

import logging

import pytest

from workhorse import Retry, Workhorse, current_job
from workhorse.testing import run_job


@pytest.fixture
def app() -> Workhorse:
    return Workhorse("memory://")


def _job_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "workhorse.job"]


async def test_messages_start_with_the_job_and_records_carry_its_fields(
    app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(name="billing.charge", retry=Retry(max_attempts=3))
    async def charge(cents: int) -> None:
        current_job().log.warning("charging %d cents", cents)

    with caplog.at_level(logging.INFO, logger="workhorse.job"):
        await run_job(charge, 1999)

    [record] = _job_records(caplog)
    assert record.getMessage() == "job 0 (billing.charge, attempt 1/3): charging 1999 cents"
    fields = vars(record)
    assert (fields["job_id"], fields["task"], fields["attempt"]) == (0, "billing.charge", 1)
    assert record.levelno == logging.WARNING
    assert record.funcName == "charge", "the record points at the task, not at workhorse"


async def test_sync_tasks_log_the_same_way_and_extras_add_up(
    app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(name="odd%name")
    def report() -> None:
        log = current_job().log
        log.info("100% done")  # no arguments: the message is not %-formatted
        log.info("%s%% of %s", 50, "it", extra={"step": "second"})

    with caplog.at_level(logging.INFO, logger="workhorse.job"):
        await run_job(report, attempt=2, max_attempts=5)

    first, second = _job_records(caplog)
    assert first.getMessage() == "job 0 (odd%name, attempt 2/5): 100% done"
    assert second.getMessage() == "job 0 (odd%name, attempt 2/5): 50% of it"
    assert (vars(second)["step"], vars(second)["attempt"]) == ("second", 2)


async def test_a_disabled_level_formats_nothing(
    app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    class Loud:
        def __str__(self) -> str:
            raise AssertionError("formatted although the level is off")

    @app.task
    async def quiet() -> None:
        current_job().log.debug("%s", Loud())

    with caplog.at_level(logging.INFO, logger="workhorse.job"):
        await run_job(quiet)

    assert _job_records(caplog) == []
