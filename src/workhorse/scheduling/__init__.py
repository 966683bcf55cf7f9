"""Periodic jobs: cron expressions (in a time zone) and fixed intervals, whose ticks the
workers' maintenance enqueues once each (see ``app.schedule`` and ``app.periodic``)."""

from __future__ import annotations

from workhorse.scheduling.schedule import Schedule

__all__ = ["Schedule"]
