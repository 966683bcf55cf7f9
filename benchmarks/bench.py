"""workhorse's own benchmark: enqueue rates, drain rate, pickup latency, idle CPU.

    python benchmarks/bench.py [--backend sqlite|sqlite-normal|postgres|all] [--jobs 20000]
                               [--profile]

``sqlite`` is the default store (``synchronous=FULL``: an fsync per commit); ``sqlite-normal``
is the same file with ``?synchronous=normal`` (WAL keeps it consistent on a crash, the last
commits may be lost on a power cut). Each figure is taken on a fresh store (a temporary
SQLite file, or a throwaway schema in the local PostgreSQL ``test`` database, dropped
afterwards). Drains and latency use real worker processes (``python -m workhorse worker
start bench:app``); completion is counted in the store. Prints a table per backend and
writes ``benchmarks/results/workhorse.md``. With ``--profile``, py-spy samples the
one-process drain and the top hot spots are written next to it
(``workhorse-profile-<backend>.txt``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workhorse import Workhorse
from workhorse.jobs import JobState

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONCURRENCY = 16
ENQUEUERS = 50
BULK_BATCH = 1_000
LATENCY_SAMPLES = 200
IDLE_CPU_SECONDS = 10.0
DRAIN_TIMEOUT = 600.0
DRAIN_POLL = 0.5
"""Seconds between two counts of a drain's completed jobs. The count reads the whole
jobs table; at 20 a second it took a quarter of a core from PostgreSQL, which showed as
a slower drain. The figures come from the jobs' own start and finish times, so the
count only has to notice the end."""
STARTUP_POLL = 0.05
"""Until the first job finishes (when the profiler starts)."""
FIGURES = ("enqueue", "drain", "latency")
SQLITE_OPTIONS = ""
"""Query string added to the SQLite URL (``--sqlite-options``), e.g. ``synchronous=normal``."""

TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "sqlite": {
        "enqueue_single": (">=", 10_000),
        "enqueue_bulk": (">=", 50_000),
        "drain_1": (">=", 10_000),
        "latency_p50": ("<=", 0.005),
        "idle_cpu": ("<", 2.0),
    },
    "sqlite-normal": {},
    "postgres": {
        "enqueue_bulk": (">=", 50_000),
        "drain_1": (">=", 10_000),
        "latency_p50": ("<=", 0.002),
    },
}


def build_app(url: str | None = None) -> Workhorse:
    """An app with the benchmark's two tasks (stable names, so any process finds them)."""
    new_app = Workhorse(url)

    @new_app.task(name="bench.noop")
    async def noop() -> None:
        """The no-op job."""

    @new_app.task(name="bench.stamp")
    async def stamp() -> float:
        """When the job started, by this machine's clock."""
        return time.time()

    return new_app


app = build_app()
"""What the worker processes run (``bench:app``; the store comes from ``--url``)."""


# -- stores ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_store(backend: str) -> AsyncIterator[tuple[str, Workhorse]]:
    """A new, empty store and an app on it; removed afterwards."""
    if backend.startswith("sqlite"):
        directory = Path(tempfile.mkdtemp(prefix="workhorse-bench-"))
        options = "&".join(
            option
            for option in (
                "synchronous=normal" if backend == "sqlite-normal" else "",
                SQLITE_OPTIONS,
            )
            if option
        )
        url = f"sqlite:///{directory / 'bench.db'}" + (f"?{options}" if options else "")
        cleanup: Callable[[], None] = lambda: shutil.rmtree(directory, ignore_errors=True)  # noqa: E731
    else:
        schema = f"bench_{secrets.token_hex(4)}"
        url = f"{PG_SERVER}?schema={schema}"
        cleanup = lambda: drop_schema(schema)  # noqa: E731
    store_app = build_app(url)
    try:
        await store_app.migrate()
        yield url, store_app
    finally:
        await store_app.aclose()
        cleanup()


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- worker processes -------------------------------------------------------------------


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    """One real worker process on ``url``, in its own process group."""
    cmd = [
        sys.executable, "-m", "workhorse", "worker", "start", "bench:app",
        "--url", url, "--concurrency", str(CONCURRENCY), "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(BENCH_DIR)}
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, cwd=BENCH_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's group; SIGKILL what is left after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc_pid in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{proc_pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# -- measurements ---------------------------------------------------------------------


@dataclass
class Report:
    """The figures of one backend."""

    backend: str
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


async def completed(store_app: Workhorse) -> int:
    return sum(s.counts.get(JobState.COMPLETED, 0) for s in await store_app.queue_stats())


async def enqueue_single(backend: str, n: int) -> float:
    async with fresh_store(backend) as (_, store_app):
        noop = store_app.get_task("bench.noop")
        start = time.perf_counter()
        for _ in range(n):
            await noop.enqueue()
        return n / (time.perf_counter() - start)


async def enqueue_concurrent(backend: str, n: int) -> float:
    async with fresh_store(backend) as (_, store_app):
        noop = store_app.get_task("bench.noop")

        async def enqueuer(count: int) -> None:
            for _ in range(count):
                await noop.enqueue()

        share = [n // ENQUEUERS + (i < n % ENQUEUERS) for i in range(ENQUEUERS)]
        start = time.perf_counter()
        await asyncio.gather(*(enqueuer(c) for c in share))
        return n / (time.perf_counter() - start)


async def enqueue_bulk(backend: str, n: int, batch: int) -> float:
    async with fresh_store(backend) as (_, store_app):
        noop = store_app.get_task("bench.noop")
        start = time.perf_counter()
        for first in range(0, n, batch):
            await store_app.enqueue_many([noop.call() for _ in range(min(batch, n - first))])
        return n / (time.perf_counter() - start)


async def drain(
    backend: str, n: int, processes: int, workdir: Path, profile: Path | None
) -> tuple[float, float]:
    """(jobs/s from the first start to the last finish, jobs/s including start-up)."""
    async with fresh_store(backend) as (url, store_app):
        noop = store_app.get_task("bench.noop")
        for first in range(0, n, 5_000):
            await store_app.enqueue_many([noop.call() for _ in range(min(5_000, n - first))])
        spawned = time.time()  # the jobs' times are the same machine's clock
        workers = [
            start_worker(url, workdir / f"drain-{backend}-{i}.log") for i in range(processes)
        ]
        spy = None
        try:
            deadline = time.monotonic() + DRAIN_TIMEOUT
            done = 0
            while done < n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"drain: {done}/{n} after {DRAIN_TIMEOUT:.0f}s")
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError(f"a worker exited during the drain ({done}/{n} done)")
                await asyncio.sleep(DRAIN_POLL if done else STARTUP_POLL)
                done = await completed(store_app)
                if profile and spy is None and done:  # sample the drain, not the start-up
                    spy = start_profiler(workers[0].pid, profile)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            for w in workers:
                stop(w)
        records = await store_app.list_jobs(states=[JobState.COMPLETED], limit=n)
        starts = [r.started_at for r in records if r.started_at]
        ends = [r.finished_at for r in records if r.finished_at]
        span = (max(ends) - min(starts)).total_seconds()
        return n / span, n / (max(ends).timestamp() - spawned)


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("  (py-spy not installed: no profile)")
        return None
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
         "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def latency_and_idle_cpu(backend: str, samples: int, workdir: Path) -> dict[str, float]:
    async with fresh_store(backend) as (url, store_app):
        stamp = store_app.get_task("bench.stamp")
        worker = start_worker(url, workdir / f"latency-{backend}.log")
        try:
            values = []
            for i in range(5 + samples):
                await asyncio.sleep(random.uniform(0.05, 0.15))
                sent = time.time()
                job = await stamp.enqueue()
                started = await job.result(timeout=30 if i == 0 else 10)
                if i >= 5:  # the first few include the worker's start-up
                    values.append(started - sent)
            await asyncio.sleep(1.0)
            before = cpu_seconds(worker.pid)
            await asyncio.sleep(IDLE_CPU_SECONDS)
            idle_cpu = (cpu_seconds(worker.pid) - before) / IDLE_CPU_SECONDS * 100
        finally:
            stop(worker)
        values.sort()
        return {
            "latency_p50": values[len(values) // 2],
            "latency_p99": values[min(len(values) - 1, round(len(values) * 0.99) - 1)],
            "idle_cpu": idle_cpu,
        }


async def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> Report:
    report = Report(backend)
    n = args.jobs
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("enqueue_single", lambda: enqueue_single(backend, n)),
        ("enqueue_concurrent", lambda: enqueue_concurrent(backend, n)),
        ("enqueue_bulk", lambda: enqueue_bulk(backend, n, n)),
        ("enqueue_bulk_1000", lambda: enqueue_bulk(backend, n, BULK_BATCH)),
    ]
    for key, step in steps if "enqueue" in args.figures else []:
        await measure(report, key, step)
    if "drain" not in args.figures:
        return await latency_figures(report, backend, args, workdir)
    profile = RESULTS_DIR / f"workhorse-profile-{backend}.raw.tmp" if args.profile else None
    await measure(report, "drain_1", lambda: drain(backend, n, 1, workdir, profile), pair=True)
    if profile is not None and profile.exists():
        summary = RESULTS_DIR / f"workhorse-profile-{backend}.txt"
        summary.write_text(summarize_profile(profile))
        report.notes.append(f"profile of the one-process drain: {summary.name}")
    if backend == "postgres":
        await measure(report, "drain_4", lambda: drain(backend, n, 4, workdir, None), pair=True)
    return await latency_figures(report, backend, args, workdir)


async def latency_figures(
    report: Report, backend: str, args: argparse.Namespace, workdir: Path
) -> Report:
    if "latency" not in args.figures:
        return report
    print(f"  {backend}: latency and idle CPU ...", flush=True)
    try:
        report.figures.update(await latency_and_idle_cpu(backend, args.samples, workdir))
    except Exception as exc:
        report.notes.append(f"latency/idle CPU failed: {type(exc).__name__}: {exc}")
    return report


async def measure(report: Report, key: str, step: Callable[[], Any], *, pair: bool = False) -> None:
    print(f"  {report.backend}: {key} ...", flush=True)
    try:
        value = await step()
    except Exception as exc:
        report.notes.append(f"{key} failed: {type(exc).__name__}: {exc}")
        return
    if pair:
        report.figures[key], report.figures[f"{key}_wall"] = value
    else:
        report.figures[key] = value


# -- profile summary --------------------------------------------------------------------


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self and total sample shares per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for function in {f.rsplit(":", 1)[0] + ")" for f in frames}:
            total[function] += count
    raw.unlink()
    lines = [f"py-spy samples of one worker process draining no-op jobs: {samples}", ""]
    lines.append("Self time by line (where the CPU is; C calls show at the calling line):")
    lines += [f"  {c / samples:6.1%}  {f}" for f, c in own.most_common(top)]
    lines += ["", "Total time by workhorse function (what the time is spent under):"]
    ours = [(f, c) for f, c in total.most_common() if "workhorse/" in f]
    lines += [f"  {c / samples:6.1%}  {f}" for f, c in ours[:top]]
    return "\n".join(lines) + "\n"


def short_frame(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py:12)``."""
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in frame:
            head, _, tail = frame.partition(marker)
            return f"{head.split('(')[0]}({tail}"
    return frame


# -- output -------------------------------------------------------------------------------

ROWS = [
    ("enqueue_single", "single enqueue, sequential awaits (jobs/s)", "rate"),
    ("enqueue_concurrent", f"single enqueue, {ENQUEUERS} concurrent enqueuers (jobs/s)", "rate"),
    ("enqueue_bulk", "bulk enqueue, all jobs in one enqueue_many call (jobs/s)", "rate"),
    ("enqueue_bulk_1000", f"bulk enqueue, batches of {BULK_BATCH:,} (jobs/s)", "rate"),
    ("drain_1", "drain, 1 worker process, first start to last finish (jobs/s)", "rate"),
    ("drain_1_wall", "  same, from process spawn (includes start-up) (jobs/s)", "rate"),
    ("drain_4", "drain, 4 worker processes (jobs/s)", "rate"),
    ("drain_4_wall", "  same, from process spawn (jobs/s)", "rate"),
    ("latency_p50", "idle pickup latency p50 (ms)", "ms"),
    ("latency_p99", "idle pickup latency p99 (ms)", "ms"),
    ("idle_cpu", f"idle worker CPU over {IDLE_CPU_SECONDS:.0f} s (% of one core)", "pct"),
]


def show(key: str, kind: str, figures: dict[str, float]) -> str:
    if key not in figures:
        return "-"
    value = figures[key]
    return {"rate": f"{value:,.0f}", "ms": f"{value * 1000:.2f}", "pct": f"{value:.2f}%"}[kind]


def verdict(backend: str, key: str, figures: dict[str, float]) -> str:
    target = TARGETS.get(backend, {}).get(key)
    if target is None and key == "drain_4" and "drain_1" in figures:
        target = (">", figures["drain_1"])
    if target is None or key not in figures:
        return ""
    op, bound = target
    value = figures[key]
    ok = {">=": value >= bound, "<=": value <= bound, "<": value < bound, ">": value > bound}[op]
    shown = f"{bound * 1000:g} ms" if key.startswith("latency") else f"{bound:,.0f}"
    if key == "idle_cpu":
        shown = f"{bound:g}%"
    return f"{'met' if ok else 'MISSED'} ({op} {shown})"


def table(reports: list[Report]) -> list[str]:
    head = "| figure | " + " | ".join(f"{r.backend} | target" for r in reports) + " |"
    lines = [head, "|---|" + "---|---|" * len(reports)]
    for key, title, kind in ROWS:
        if not any(key in r.figures for r in reports):
            continue
        cells = [
            f"{show(key, kind, r.figures)} | {verdict(r.backend, key, r.figures)}" for r in reports
        ]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def write_markdown(reports: list[Report], args: argparse.Namespace, loads: tuple[str, str]) -> Path:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    lines = [
        "# workhorse benchmark",
        "",
        "Written by `python benchmarks/bench.py`; see `benchmarks/README.md` for what each "
        f"figure means. {args.jobs:,} no-op jobs per figure; worker concurrency {CONCURRENCY}; "
        f"{args.samples} latency samples. Machine: {os.cpu_count()} cores, {cpu}, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}. Load average "
        f"(uptime) before: {loads[0]}; after: {loads[1]}. Other work shared these 2 cores: "
        "the numbers move with machine load.",
        "",
        *table(reports),
        "",
    ]
    for r in reports:
        lines += [f"- {r.backend}: {note}" for note in r.notes]
    path = RESULTS_DIR / "workhorse.md"
    path.write_text("\n".join(lines) + "\n")
    return path


async def main_async(args: argparse.Namespace) -> None:
    backends = ["sqlite", "sqlite-normal", "postgres"] if args.backend == "all" else [args.backend]
    RESULTS_DIR.mkdir(exist_ok=True)
    before = load()
    reports = []
    with tempfile.TemporaryDirectory(prefix="workhorse-bench-logs-") as tmp:
        for backend in backends:
            print(f"{backend} (load {load()})", flush=True)
            reports.append(await run_backend(backend, args, Path(tmp)))
    after = load()
    print()
    print("\n".join(table(reports)))
    for r in reports:
        for note in r.notes:
            print(f"- {r.backend}: {note}")
    print(f"\nload before: {before}; after: {after}")
    if args.backend == "all" and args.figures == set(FIGURES) and not args.sqlite_options:
        print(f"wrote {write_markdown(reports, args, (before, after))}")
    else:
        print("(a partial run: results/workhorse.md is left as it was)")


def main() -> None:
    global SQLITE_OPTIONS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "sqlite-normal", "postgres", "all"], default="all"
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=LATENCY_SAMPLES)
    parser.add_argument("--profile", action="store_true", help="py-spy the one-process drain")
    parser.add_argument(
        "--figures",
        type=lambda text: set(text.split(",")),
        default=set(FIGURES),
        help="comma-separated subset of enqueue,drain,latency (default: all)",
    )
    parser.add_argument(
        "--sqlite-options",
        default="",
        help="URL query for the SQLite store, e.g. synchronous=normal",
    )
    args = parser.parse_args()
    SQLITE_OPTIONS = args.sqlite_options
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
