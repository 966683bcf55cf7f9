"""The demo's live view: a bar per job state, throughput, the jobs running right now and
what just happened."""

from __future__ import annotations

import time
from collections import deque

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from workhorse.backends.base import QueueStats
from workhorse.cli._output import STATE_ORDER, STATE_STYLES, duration
from workhorse.jobs import FINAL_STATES, JobRecord, JobState

_THROUGHPUT_WINDOW = 1.0
_EVENTS_SHOWN = 6
_LOGS_SHOWN = 3


class DemoDisplay:
    """Rich renderable fed by :meth:`update` (store snapshots) and :meth:`event`."""

    def __init__(self, *, total: int, title: str) -> None:
        self.total = total
        self.title = title
        self.started = time.monotonic()
        self.counts: dict[JobState, int] = dict.fromkeys(STATE_ORDER, 0)
        self.running: list[JobRecord] = []
        self.events: deque[Text] = deque(maxlen=_EVENTS_SHOWN)
        self.logs: deque[Text] = deque(maxlen=_LOGS_SHOWN)
        self._samples: deque[tuple[float, int]] = deque()

    @property
    def finished(self) -> int:
        """Jobs in a final state."""
        return sum(self.counts[state] for state in FINAL_STATES)

    @property
    def live(self) -> int:
        """Jobs that may still run."""
        return sum(count for state, count in self.counts.items() if state not in FINAL_STATES)

    @property
    def elapsed(self) -> float:
        """Seconds since the display was made."""
        return time.monotonic() - self.started

    def update(self, stats: list[QueueStats], running: list[JobRecord]) -> None:
        """Take a new snapshot of the store."""
        counts = dict.fromkeys(STATE_ORDER, 0)
        for queue in stats:
            for state, count in queue.counts.items():
                counts[state] = counts.get(state, 0) + count
        self.counts = counts
        self.running = running
        now = time.monotonic()
        self._samples.append((now, self.finished))
        while len(self._samples) > 2 and now - self._samples[0][0] > _THROUGHPUT_WINDOW:
            self._samples.popleft()

    def event(self, message: str, style: str = "") -> None:
        """Add a line to the "what just happened" list."""
        self.events.append(self._line(message, style))

    def log(self, message: str, style: str = "") -> None:
        """Show one of the worker's log lines (only the latest few stay)."""
        self.logs.append(self._line(message, style))

    def _line(self, message: str, style: str) -> Text:
        line = Text(f"{self.elapsed:5.1f}s ", style="dim") + Text(message, style=style)
        line.no_wrap = True
        line.overflow = "ellipsis"
        return line

    @property
    def throughput(self) -> float:
        """Jobs finished per second over the last second or so."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def __rich__(self) -> RenderableType:
        average = self.finished / self.elapsed if self.elapsed > 0 else 0.0
        header = Text.assemble(
            ("elapsed ", "dim"),
            f"{duration(self.elapsed):>6}",
            ("   finished ", "dim"),
            f"{self.finished}/{self.total}",
            ("   throughput ", "dim"),
            f"{self.throughput:,.0f} jobs/s",
            (f" (average {average:,.0f})", "dim"),
        )
        parts: list[RenderableType] = [header, Text(), self._state_bars()]
        if self.running:
            parts += [Text("running now", style="bold"), self._running_table()]
        if self.events:
            parts += [Text("what just happened", style="bold"), *self.events]
        if self.logs:
            parts += [Text("worker log (warnings)", style="bold"), *self.logs]
        return Panel(Group(*parts), title=self.title, title_align="left", border_style="blue")

    def _state_bars(self) -> Table:
        bars = Table.grid(padding=(0, 1))
        for state in STATE_ORDER:
            if state is JobState.BLOCKED:
                continue
            style = STATE_STYLES[state]
            bars.add_row(
                Text(f"{state.value:>10}", style=style),
                ProgressBar(
                    total=max(self.total, 1),
                    completed=self.counts.get(state, 0),
                    width=40,
                    complete_style=style,
                    finished_style=style,
                ),
                Text(f"{self.counts.get(state, 0):>5}", style=style),
            )
        return bars

    def _running_table(self) -> Table:
        table = Table.grid(padding=(0, 1))
        for record in self.running:
            table.add_row(
                Text(f"{record.id:>6}", style="dim"),
                Text(f"{record.task:<20}"),
                ProgressBar(total=100, completed=record.progress, width=20),
                Text(f"{record.progress:3.0f}%"),
                Text(record.progress_message or "", style="dim"),
            )
        return table
