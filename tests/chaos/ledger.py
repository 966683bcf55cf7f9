"""The effects ledger: each attempt of a chaos task that reaches its side effect appends
one line ``job_id attempt pid`` to an append-only file. A short ``O_APPEND`` write is
atomic and survives a SIGKILL of the process right after it, so the test counts
duplicates and losses from the file instead of guessing them from the store."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

LEDGER_ENV = "WORKHORSE_CHAOS_LEDGER"


def record_effect(job_id: int, attempt: int) -> None:
    """Append this attempt's effect (call from inside the task)."""
    line = f"{job_id} {attempt} {os.getpid()}\n".encode()
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Effect:
    """One line of the ledger."""

    job_id: int
    attempt: int
    pid: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """The ledger file of one test."""

    path: Path

    def effects(self) -> list[Effect]:
        """Every effect recorded so far, in order."""
        if not self.path.exists():
            return []
        return [
            Effect(*(int(field) for field in line.split()))
            for line in self.path.read_text().splitlines()
        ]

    def counts(self) -> Counter[int]:
        """Effects per job id."""
        return Counter(effect.job_id for effect in self.effects())

    def duplicates(self) -> int:
        """Effects beyond the first of each job."""
        return sum(count - 1 for count in self.counts().values())
