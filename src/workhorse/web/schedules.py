"""``GET /schedules``: the app's periodic jobs with their next run and last tick."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from workhorse.scheduling.overview import ScheduleInfo, schedule_overview
from workhorse.web.guard import Reader

if TYPE_CHECKING:
    from workhorse.app import Workhorse


class ScheduleOut(BaseModel):
    """A periodic job: what it enqueues, when it runs next, what it enqueued last."""

    name: str
    task: str
    queue: str
    tenant: str | None
    trigger: str
    next_run_at: datetime | None
    catch_up_seconds: float
    last_tick_at: datetime | None
    last_job_id: int | None

    @classmethod
    def of(cls, info: ScheduleInfo) -> ScheduleOut:
        """The API view of a schedule."""
        return cls(
            name=info.name,
            task=info.task,
            queue=info.queue,
            tenant=info.tenant,
            trigger=info.trigger,
            next_run_at=info.next_run_at,
            catch_up_seconds=info.catch_up_seconds,
            last_tick_at=info.last_tick_at,
            last_job_id=info.last_job_id,
        )


def install_schedule_routes(router: APIRouter, app: Workhorse) -> None:
    """Add ``GET /schedules`` to ``router``."""

    @router.get("/schedules", tags=["schedules"], summary="Periodic jobs")
    async def schedules(principal: Reader) -> list[ScheduleOut]:
        """The app's schedules (a tenant's key sees those enqueuing for its tenant), with
        their trigger, next run and last tick enqueued."""
        infos = await schedule_overview(app, datetime.now(UTC))
        return [
            ScheduleOut.of(info)
            for info in infos
            if principal.admin or info.tenant == principal.tenant
        ]
