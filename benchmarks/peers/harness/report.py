"""The results as a Markdown table and a bar chart."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from harness.interface import IO_CONCURRENCY

FIGURES = [
    ("enqueue_single", "single enqueue /s", True),
    ("enqueue_bulk", "bulk enqueue /s", True),
    ("drain", "drain /s (settings column)", True),
    ("drain_io", f"drain /s (concurrency {IO_CONCURRENCY})", True),
    ("latency_p50", "pickup p50 ms", False),
    ("latency_p99", "pickup p99 ms", False),
    ("sleep_seconds", "sleep workload s", False),
]
"""(key, heading, higher is better)."""


def load_text() -> str:
    """The load averages, as uptime prints them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def machine_info() -> dict[str, str]:
    """What the numbers were taken on."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": f"{os.cpu_count()} cores, {cpu}",
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "date": time.strftime("%Y-%m-%d"),
        "load_before": load_text(),
    }


def fmt(key: str, value: float | None) -> str:
    """A figure as the table shows it."""
    if value is None:
        return "-"
    if key.startswith("latency"):
        return f"{value * 1000:.1f}"
    if key == "sleep_seconds":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def one_line(row: dict[str, Any]) -> str:
    """A row as one progress line."""
    if "error" in row and "drain" not in row:
        return f"FAILED: {row['error'].splitlines()[0][:200]}"
    parts = [f"{label}={fmt(key, row.get(key))}" for key, label, _ in FIGURES]
    if "error" in row:
        parts.append(f"(then failed: {row['error'].splitlines()[0][:150]})")
    return ", ".join(parts)


def label(row: dict[str, Any]) -> str:
    """``system/backend``."""
    return f"{row.get('system', row['module'])}/{row.get('backend', '?')}"


def reference(rows: list[dict[str, Any]], backend: str) -> dict[str, Any] | None:
    """The workhorse row a peer on ``backend`` is compared with (Redis peers: SQLite)."""
    wanted = "postgres" if backend == "postgres" else "sqlite"
    for row in rows:
        if row.get("system") == "workhorse" and row.get("backend") == wanted:
            return row
    return None


def ratio(
    key: str, higher_better: bool, ours: dict[str, Any] | None, theirs: dict[str, Any]
) -> str:
    """How many times better workhorse is on ``key`` (> 1: workhorse leads)."""
    if ours is None or not ours.get(key) or not theirs.get(key):
        return "-"
    value = ours[key] / theirs[key] if higher_better else theirs[key] / ours[key]
    return f"{value:.2f}x"


def rounds_note(row: dict[str, Any]) -> str:
    """What the single enqueue's figure is the median of, if of more than one round."""
    rates: list[float] = row.get("enqueue_single_rounds", [])
    if len(rates) < 2:
        return ""
    return (
        f"single enqueue: median of {len(rates)} rounds "
        f"({', '.join(f'{rate:,.0f}' for rate in rates)})"
    )


def write(data: dict[str, Any], md_path: Path, png_path: Path) -> None:
    """Write the Markdown report and the chart."""
    rows: list[dict[str, Any]] = data["rows"]
    machine = data["machine"]
    lines = [
        "# workhorse and its Python peers",
        "",
        "Written by `python benchmarks/peers/run.py`; see `benchmarks/README.md` for what each "
        "number means. Machine: "
        f"{machine.get('cpu')}, Python {machine.get('python')}, {machine.get('os')}, "
        f"{machine.get('date')}. Load average (uptime) at the start of the latest `run.py`: "
        f"{machine.get('load_before')}, at its end: {machine.get('load_after', '?')}; rows "
        "kept from earlier runs (`--only`) carry their own 1-minute load in the load "
        "column, with the time they were measured in `peers.json`. Other work ran on the same "
        "2 cores at the same time: the numbers move with machine load.",
        "",
        f"Workload: {data['params'].get('jobs', 20000):,} no-op jobs (single enqueue: the "
        "median of the rounds in the notes, each round through every system in turn, the "
        "first in reverse order, the last the main run's); pickup latency over "
        f"{data['params'].get('samples', 200)} jobs enqueued one at a time to an idle worker; "
        f"{data['params'].get('sleep_jobs', 2000):,} jobs that each sleep 50 ms at "
        "concurrency 50 (ideal: 2.00 s). Completion is counted from effects the tasks "
        "record in Redis, never from return codes.",
        "",
        "| system | backend | version | drain settings (one process) | "
        + " | ".join(h for _, h, _ in FIGURES)
        + " | load | notes |",
        "|" + "---|" * (len(FIGURES) + 6),
    ]
    for row in rows:
        notes = [row.get("bulk_note", "")]
        notes += [row[k] for k in ("drain_note", "drain_io_note", "latency_note") if k in row]
        notes.append(rounds_note(row))
        if "error" in row:
            notes.append("**FAILED**: " + row["error"].splitlines()[0][:160].replace("|", "/"))
        cells = [fmt(key, row.get(key)) for key, _, _ in FIGURES]
        load = row.get("load_before")
        lines.append(
            "| "
            + " | ".join(
                [
                    str(row.get("system", row["module"])),
                    str(row.get("backend", "?")),
                    str(row.get("version", "?")),
                    str(row.get("settings", "?")),
                    *cells,
                    f"{load:.2f}" if load is not None else "-",
                    "; ".join(n for n in notes if n),
                ]
            )
            + " |"
        )
    lines += [
        "",
        f"Settings at concurrency {IO_CONCURRENCY} (the second drain, of jobs enqueued with "
        "the bulk call where there is one; the pickup latency; the sleep workload): "
        + "; ".join(f"{label(r)}: {r['io_settings']}" for r in rows if "io_settings" in r)
        + ".",
        "",
        "## Ratio: workhorse / peer",
        "",
        "Greater than 1 means workhorse is ahead (for latency and the sleep workload: the "
        "peer's figure divided by workhorse's). Peers on PostgreSQL are compared with "
        "workhorse on PostgreSQL; peers on SQLite and Redis with workhorse on SQLite.",
        "",
        "| peer | " + " | ".join(h for _, h, _ in FIGURES) + " |",
        "|---|" + "---|" * len(FIGURES),
    ]
    for row in rows:
        if row.get("system") == "workhorse":
            continue
        ours = reference(rows, row.get("backend", ""))
        cells = [ratio(key, better, ours, row) for key, _, better in FIGURES]
        lines.append(f"| {label(row)} | " + " | ".join(cells) + " |")
    lines += ["", "![peers](peers.png)", ""]
    md_path.write_text("\n".join(lines))
    chart(rows, machine, png_path)


def chart(rows: list[dict[str, Any]], machine: dict[str, str], path: Path) -> None:
    """Six bar panels: both drains, single and bulk enqueue, pickup p50, sleep workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("drain", "drain at the settings column, jobs/s (higher is better)", 1.0),
        ("drain_io", f"drain at concurrency {IO_CONCURRENCY}, jobs/s (higher is better)", 1.0),
        ("enqueue_single", "single enqueue, jobs/s (higher is better)", 1.0),
        ("enqueue_bulk", "bulk enqueue, jobs/s (higher is better)", 1.0),
        ("latency_p50", "pickup latency p50, ms (lower is better, log)", 1000.0),
        ("sleep_seconds", "sleep workload, s (lower is better; ideal 2.00)", 1.0),
    ]
    fig, axes = plt.subplots(3, 2, figsize=(15, 15))
    for ax, (key, title, scale) in zip(axes.flat, panels, strict=True):
        shown = [r for r in rows if r.get(key)]
        names = [label(r) for r in shown]
        values = [r[key] * scale for r in shown]
        colors = ["#d62728" if r.get("system") == "workhorse" else "#1f77b4" for r in shown]
        ax.barh(names, values, color=colors)
        ax.invert_yaxis()
        ax.set_title(title)
        if key.startswith("latency"):
            ax.set_xscale("log")
        for y, v in enumerate(values):
            ax.text(v, y, " " + _bar_label(key, v), va="center", fontsize=8)
    fig.suptitle(
        f"workhorse (red) and Python peers - {machine.get('cpu')}, {machine.get('date')}, "
        f"load at start {machine.get('load_before')}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _bar_label(key: str, value: float) -> str:
    if key == "sleep_seconds":
        return f"{value:.2f}"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
