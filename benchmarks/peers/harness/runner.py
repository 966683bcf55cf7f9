"""Run the workload on ONE system and write its figures as JSON.

Started by ``run.py`` with the Python of the virtualenv the system needs::

    python -m harness.runner huey_sqlite --out result.json

Phases, each bounded in time (``--single-only``: the first alone, for run.py's rounds of
single enqueues): enqueue N no-op jobs one call at a time; drain them with
one worker process at the system's drain concurrency (16 for most); enqueue N more with
the bulk call (one call at a time where there is none) and drain them with one worker
process at concurrency 50; pickup latency of jobs enqueued one at a time to that now idle
worker; then 2,000 jobs that each sleep 50 ms, at concurrency 50. Completion is always
the count of effects the tasks recorded (see ``effects.py``), never a return code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import pg
from harness.effects import EffectsReader
from harness.interface import IO_CONCURRENCY, NAP, NOOP, STAMP, Context, System, bench_env
from harness.tasks import NAP_SECONDS

DRAIN_TIMEOUT = 400.0
SLEEP_TIMEOUT = 120.0
LATENCY_BUDGET = 150.0
SAMPLE_TIMEOUT = 10.0
WARMUP_SAMPLES = 5


class PhaseError(RuntimeError):
    """A phase could not finish; the message says why."""


class Runner:
    """Drives one system through the phases and collects the figures."""

    def __init__(self, system: System, args: argparse.Namespace) -> None:
        self.system = system
        self.args = args
        self.effects = EffectsReader()
        self.result: dict[str, Any] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.pid_file: Path = args.pid_file

    # -- workers ------------------------------------------------------------------------

    def start_worker(self, concurrency: int) -> subprocess.Popen[bytes]:
        proc = self.system.start_worker(concurrency)
        self.workers.append(proc)
        with self.pid_file.open("a") as f:
            f.write(f"{proc.pid}\n")
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop_group(proc)
        self.workers.clear()

    def worker_log_tail(self) -> str:
        logs = sorted(self.system.ctx.run_dir.glob("worker-*.log"))
        text = "".join(p.read_text(errors="replace") for p in logs)
        return text[-1500:]

    # -- waiting on effects -------------------------------------------------------------

    async def wait_for(
        self, count: int, timeout: float, worker: subprocess.Popen[bytes]
    ) -> tuple[int, float]:
        """Poll the effect count until ``count`` or the deadline; (count, elapsed)."""
        start = time.monotonic()
        deadline = start + timeout
        seen = self.effects.count()
        while seen < count and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise PhaseError(
                    f"worker exited with code {worker.returncode} after {seen} of {count} "
                    f"jobs\n{self.worker_log_tail()}"
                )
            await asyncio.sleep(0.02)
            seen = self.effects.count()
        return seen, time.monotonic() - start

    async def drain(self, key: str, count: int, concurrency: int) -> subprocess.Popen[bytes]:
        """Start a worker on ``count`` queued no-ops; rate from first to last effect."""
        self.effects.reset()
        worker = self.start_worker(concurrency)
        seen, _ = await self.wait_for(count, DRAIN_TIMEOUT, worker)
        first, last = self.effects.span()
        if seen < count:
            self.result[key] = seen / max(time.time() - first, 1e-9) if first else 0.0
            self.result[f"{key}_note"] = f"timed out after {DRAIN_TIMEOUT:.0f}s: {seen}/{count}"
            raise PhaseError(f"{key}: only {seen} of {count} jobs ran in {DRAIN_TIMEOUT:.0f}s")
        if seen > count:
            self.result[f"{key}_note"] = f"{seen - count} duplicate effects"
        self.result[key] = (count - 1) / max(last - first, 1e-9)
        return worker

    # -- phases -------------------------------------------------------------------------

    async def enqueue_each(self, n: int) -> None:
        """Enqueue ``n`` no-ops with one client call each."""
        for _ in range(n):
            await self.system.enqueue_one(NOOP)

    async def enqueue_single(self, n: int) -> None:
        start = time.perf_counter()
        await self.enqueue_each(n)
        self.result["enqueue_single"] = n / (time.perf_counter() - start)

    async def enqueue_bulk(self, n: int) -> None:
        start = time.perf_counter()
        await self.system.enqueue_bulk(NOOP, n)
        self.result["enqueue_bulk"] = n / (time.perf_counter() - start)

    async def latency(self, worker: subprocess.Popen[bytes], samples: int) -> None:
        """Enqueue one stamp job at a time to the idle worker, spaced out."""
        budget_end = time.monotonic() + LATENCY_BUDGET
        self.effects.reset()
        done = 0
        for i in range(WARMUP_SAMPLES + samples):
            if time.monotonic() > budget_end:
                self.result["latency_note"] = f"budget of {LATENCY_BUDGET:.0f}s spent"
                break
            await asyncio.sleep(random.uniform(0.05, 0.15))
            await self.system.enqueue_one(STAMP, time.time())
            seen, _ = await self.wait_for(done + 1, SAMPLE_TIMEOUT, worker)
            if seen <= done:
                raise PhaseError(f"latency sample {i} not picked up in {SAMPLE_TIMEOUT:.0f}s")
            done = seen
        values = sorted(self.effects.latencies()[WARMUP_SAMPLES:])
        if not values:
            raise PhaseError("no latency sample")
        self.result["latency_samples"] = len(values)
        self.result["latency_p50"] = percentile(values, 50)
        self.result["latency_p99"] = percentile(values, 99)

    async def sleep_workload(self, n: int, concurrency: int) -> None:
        if self.system.has_bulk:
            await self.system.enqueue_bulk(NAP, n)
        else:
            for _ in range(n):
                await self.system.enqueue_one(NAP)
        self.effects.reset()
        worker = self.start_worker(concurrency)
        seen, _ = await self.wait_for(n, SLEEP_TIMEOUT, worker)
        first, last = self.effects.span()
        if seen < n:
            raise PhaseError(f"sleep workload: only {seen} of {n} jobs in {SLEEP_TIMEOUT:.0f}s")
        # The first effect lands when the first job ENDS: add its own 50 ms back.
        self.result["sleep_seconds"] = last - first + NAP_SECONDS
        self.result["sleep_ideal"] = n * NAP_SECONDS / concurrency

    async def run(self) -> None:
        args, system = self.args, self.system
        self.result["load_before"] = os.getloadavg()[0]
        self.effects.flush_db()
        await system.setup()

        await self.enqueue_single(args.jobs)
        if args.single_only:
            return
        await self.drain("drain", args.jobs, system.drain_concurrency)
        self.stop_workers()
        if system.has_bulk:
            await self.enqueue_bulk(args.jobs)
        else:
            await self.enqueue_each(args.jobs)
        worker = await self.drain("drain_io", args.jobs, IO_CONCURRENCY)
        await self.latency(worker, args.samples)
        self.stop_workers()
        await self.sleep_workload(args.sleep_jobs, IO_CONCURRENCY)
        self.stop_workers()
        self.result["load_after"] = os.getloadavg()[0]


_REPO_PREFIX = f"{Path(__file__).resolve().parents[3]}{os.sep}"
_FILE = re.compile(r'File "([^"]+)"')


def portable(text: str) -> str:
    """A traceback without this machine's paths, for the committed results: repository
    files relative to it, installed ones from their site-packages folder, the rest by
    file name."""

    def short(match: re.Match[str]) -> str:
        path = match[1]
        if path.startswith(_REPO_PREFIX):
            return f'File "{path[len(_REPO_PREFIX) :]}"'
        _, found, inside = path.partition("site-packages/")
        return f'File "{inside if found else os.path.basename(path)}"'

    return _FILE.sub(short, text)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def stop_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM a worker's process group, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # Pool children (RQ's worker-pool, Celery's) may outlive their parent.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


def load_system(module_name: str, ctx: Context) -> System:
    """Import ``systems.<module_name>`` with its BENCH_* environment, return its system."""
    os.environ.update(bench_env(ctx, 16))
    module = importlib.import_module(f"systems.{module_name}")
    system: System = module.SYSTEM(ctx)
    return system


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"peers-{args.system}-"))
    dsn = pg.dsn_for(f"peers_{args.system}")
    ctx = Context(run_dir=run_dir, pg_dsn=dsn)
    out: dict[str, Any] = {"module": args.system}
    runner: Runner | None = None
    try:
        if args.postgres:
            pg.create_database(dsn)
        system = load_system(args.system, ctx)
        out.update(
            system=system.name,
            backend=system.backend,
            version=metadata.version(system.package),
            settings=system.settings(system.drain_concurrency),
            io_settings=system.settings(IO_CONCURRENCY),
            bulk_note=system.bulk_note if system.has_bulk else "no bulk call",
        )
        runner = Runner(system, args)
        try:
            await runner.run()
        finally:
            runner.stop_workers()
            with contextlib.suppress(Exception):
                await system.teardown()
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = portable(traceback.format_exc())[-3000:]
    finally:
        if runner is not None:
            out.update(runner.result)
        with contextlib.suppress(Exception):
            EffectsReader().flush_db()
        if args.postgres:
            with contextlib.suppress(Exception):
                pg.drop_database(dsn)
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", help="module name under systems/")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--sleep-jobs", type=int, default=2_000)
    parser.add_argument("--postgres", action="store_true", help="create a database for it")
    parser.add_argument(
        "--single-only", action="store_true", help="only the single enqueue (a round of run.py)"
    )
    parser.add_argument(
        "--pid-file", type=Path, required=True, help="worker pids, for run.py to kill on timeout"
    )
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
