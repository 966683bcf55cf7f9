"""Soak test: hours of mixed load against real worker and API processes, watching their
memory and the database's size. Not part of CI (run it by hand, or nightly):

    python benchmarks/soak.py [--minutes 60] [--backend sqlite|postgres] [--workers 2]

The load, every second or so: bursts of jobs enqueued through the HTTP API and the
library (quick ones, flaky ones that succeed on their retry, ones that always fail,
slow ones that check for cancellation), cancellations of queued and running jobs, manual
retries of failed jobs, and API reads (lists, single jobs, queue stats, throughput,
metrics). Finished jobs are kept ``--ttl`` seconds (default 30) and workers prune every
10 s, so the store should stop growing once the load is steady.

Every ``--sample`` seconds it records the resident memory (VmRSS) of each worker and of
the API server, the store's size on disk and its job count. At the end, once the load
has stopped and every job is final, it prints the samples and three verdicts:

- MEMORY: for each process, RSS at the end <= RSS after the warm-up + ``--rss-slack``
  MiB (default 32). The warm-up is the first fifth of the run, at least 30 s: imports,
  pools and caches fill up during it. A leak of 1 KiB per job fails within the hour.
- STORE: with pruning on, the store's size over the last third of the run <= 1.25 x its
  size over the middle third + 4 MiB (SQLite reuses freed pages, PostgreSQL's autovacuum
  marks dead rows reusable: either way the size must level off). On a PostgreSQL server
  whose autovacuum is off, the soak runs VACUUM every minute in its place, and says so.
- DRAIN: every job ends final, no API answer was a 5xx, no worker died.

Exit code 0 when all three pass. The store is a temporary SQLite file, or a throwaway
schema in the local PostgreSQL ``test`` database (``SOAK_PG_URL``), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workhorse import Retry, Workhorse, current_job
from workhorse.backends.base import JobFilter
from workhorse.jobs import FINAL_STATES, LIVE_STATES

BENCH_DIR = Path(__file__).resolve().parent
PG_SERVER = os.environ.get("SOAK_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TTL_ENV = "SOAK_RESULT_TTL"
PRUNE_INTERVAL = 10.0
STORE_GROWTH = 1.25
STORE_SLACK_MIB = 4.0
VACUUM_EVERY = 60.0
"""How often the soak vacuums a PostgreSQL store itself when the server's autovacuum is
off (it runs every minute, at the default ``autovacuum_naptime``, when on)."""

# -- the app the worker and API processes run (``soak:app``) ----------------------------

app = Workhorse(result_ttl=float(os.environ.get(TTL_ENV, "30")))


@app.task(name="soak.quick")
async def quick(ms: float, payload: str) -> dict[str, Any]:
    """A short job with progress and a small result."""
    current_job().set_progress(50, "halfway")
    await asyncio.sleep(ms / 1000)
    return {"ms": ms, "size": len(payload)}


@app.task(name="soak.flaky", retry=Retry(max_attempts=3))
def flaky(n: int) -> int:
    """Fails its first attempt, succeeds on the retry."""
    if current_job().attempt == 1:
        raise RuntimeError(f"flaky {n}: first attempt fails")
    return n


@app.task(name="soak.broken", retry=Retry(max_attempts=2))
def broken(n: int) -> None:
    """Always fails (a traceback is stored each time)."""
    raise ValueError(f"broken {n}: never works")


@app.task(name="soak.slow")
async def slow(seconds: float) -> str:
    """Runs for seconds, stopping early when cancelled."""
    ctx = current_job()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled()
        await asyncio.sleep(0.05)
    return "slept"


# -- measuring ------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class Sample:
    """One look at the system."""

    elapsed: float
    rss: dict[str, float]
    store_mib: float
    jobs: int
    finished: int


@dataclass
class Store:
    """A throwaway store: a SQLite file or a PostgreSQL schema."""

    backend: str
    folder: Path
    schema: str = field(default_factory=lambda: f"soak_{uuid.uuid4().hex[:10]}")

    @property
    def url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.folder / 'soak.db'}"
        return f"{PG_SERVER}?schema={self.schema}"

    def size_mib(self) -> float:
        """Bytes on disk of the store, in MiB."""
        if self.backend == "sqlite":
            files = self.folder.glob("soak.db*")
            return sum(path.stat().st_size for path in files) / 2**20
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(format('%%I.%%I', schemaname, "
                "tablename))), 0) FROM pg_tables WHERE schemaname = %s",
                (self.schema,),
            ).fetchone()
        return float(row[0] if row else 0) / 2**20

    def autovacuum_off(self) -> bool:
        """True on a PostgreSQL server whose autovacuum is turned off."""
        if self.backend != "postgres":
            return False
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            row = conn.execute("SHOW autovacuum").fetchone()
        return bool(row and row[0] == "off")

    def vacuum(self) -> None:
        """VACUUM the store's tables (what autovacuum would do)."""
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
            ).fetchall()
            for (table,) in tables:
                conn.execute(f'VACUUM "{self.schema}"."{table}"')

    def drop(self) -> None:
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


# -- the processes under test ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Processes:
    """Worker processes and the API server, with their output in files."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "workhorse", *args],
                cwd=BENCH_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def rss(self) -> dict[str, float]:
        found = {name: rss_mib(proc.pid) for name, proc in self.procs.items()}
        return {name: value for name, value in found.items() if value is not None}

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop(self) -> dict[str, int | None]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = None
        return codes


# -- the load --------------------------------------------------------------------------


@dataclass
class Load:
    """Drives the mixed load and counts what the API answered."""

    client: Any
    admin: Any
    rng: random.Random
    statuses: Counter[int] = field(default_factory=Counter)
    slow_ids: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def note(self, response: Any) -> Any:
        self.statuses[response.status_code] += 1
        return response

    def job_body(self) -> dict[str, Any]:
        kind = self.rng.random()
        body: dict[str, Any]
        if kind < 0.70:
            size = self.rng.choice([10, 100, 1000, 5000])
            body = {"task": "soak.quick", "args": [self.rng.uniform(1, 20), "x" * size]}
        elif kind < 0.80:
            body = {"task": "soak.flaky", "args": [self.rng.randrange(10**6)]}
        elif kind < 0.85:
            body = {"task": "soak.broken", "args": [self.rng.randrange(10**6)]}
        else:
            body = {"task": "soak.slow", "args": [self.rng.uniform(0.5, 3)]}
        if self.rng.random() < 0.1:
            body["labels"] = {"batch": str(self.rng.randrange(100))}
        return body

    async def api_burst(self, size: int) -> None:
        for _ in range(size):
            body = self.job_body()
            response = self.note(await self.client.post("/jobs", json=body))
            if response.status_code == 201:
                job_id = response.json()["id"]
                self.ids.append(job_id)
                if body["task"] == "soak.slow":
                    self.slow_ids.append(job_id)

    async def library_burst(self, size: int) -> None:
        specs = [quick.call(self.rng.uniform(1, 5), "y" * 50) for _ in range(size)]
        jobs = await app.enqueue_many(specs)
        self.ids.extend(job.id for job in jobs)

    async def cancel_some(self) -> None:
        for _ in range(min(3, len(self.slow_ids))):
            job_id = self.slow_ids.pop(self.rng.randrange(len(self.slow_ids)))
            self.note(await self.client.delete(f"/jobs/{job_id}"))

    async def retry_some(self) -> None:
        failed = self.note(await self.client.get("/jobs", params={"status": "failed", "limit": 5}))
        for job in failed.json()["jobs"][:2] if failed.status_code == 200 else []:
            self.note(await self.client.post(f"/jobs/{job['id']}/retry"))

    async def read_some(self) -> None:
        reads = [
            self.client.get("/jobs", params={"limit": 100}),
            self.client.get("/jobs", params={"status": self.rng.choice(["queued", "completed"])}),
            self.client.get("/queues"),
            self.client.get("/throughput"),
            self.admin.get("/metrics"),
        ]
        if self.ids:
            reads.append(self.client.get(f"/jobs/{self.rng.choice(self.ids[-2000:])}"))
        for response in await asyncio.gather(*reads):
            self.note(response)

    async def tick(self) -> None:
        """One second's worth of load."""
        await self.api_burst(self.rng.randrange(10, 40))
        if self.rng.random() < 0.5:
            await self.library_burst(self.rng.randrange(50, 300))
        await self.cancel_some()
        if self.rng.random() < 0.3:
            await self.retry_some()
        await self.read_some()


# -- the run ---------------------------------------------------------------------------


async def wait_api(client: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if (await client.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise SystemExit("the API server did not come up")


async def soak(args: argparse.Namespace) -> int:
    import httpx

    from workhorse.web import create_api_key

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="workhorse-soak-") as tmp:
        folder = Path(tmp)
        store = Store(args.backend, folder)
        app.url = store.url
        env = {
            **os.environ,
            "WORKHORSE_URL": store.url,
            TTL_ENV: str(args.ttl),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])
            ),
        }
        processes = Processes(env, folder)
        try:
            backend = await app.backend()
            tenant_key = (await create_api_key(app, tenant="soak")).token
            admin_key = (await create_api_key(app, admin=True)).token
            for n in range(args.workers):
                processes.spawn(
                    f"worker-{n}",
                    *("worker", "start", "soak:app", "--concurrency", "16"),
                    *("--prune-interval", str(PRUNE_INTERVAL), "--log-level", "warning"),
                )
            port = free_port()
            processes.spawn(
                "api", "serve", "soak:app", "--port", str(port), "--log-level", "warning"
            )
            base = f"http://127.0.0.1:{port}"
            async with (
                httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {tenant_key}"}, timeout=60
                ) as client,
                httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60
                ) as admin,
            ):
                await wait_api(client)
                load = Load(client, admin, rng)
                # One origin for every sample, the one after the drain included.
                started = time.monotonic()
                samples = await run_load(args, load, processes, store, backend, started)
                drained = await drain(backend, timeout=max(120.0, args.ttl * 4))
                samples.append(await sample(args, started, processes, store, backend))
            died = processes.dead()
            codes = processes.stop()
            return report(args, samples, load.statuses, drained, died, codes)
        finally:
            processes.stop()
            await app.aclose()
            store.drop()


async def sample(
    args: argparse.Namespace, started: float, processes: Processes, store: Store, backend: Any
) -> Sample:
    total = await backend.job_count(filter=JobFilter())
    finished = await backend.job_count(filter=JobFilter(states=tuple(FINAL_STATES)))
    return Sample(
        elapsed=time.monotonic() - started,
        rss=processes.rss(),
        store_mib=store.size_mib(),
        jobs=total,
        finished=finished,
    )


async def run_load(
    args: argparse.Namespace,
    load: Load,
    processes: Processes,
    store: Store,
    backend: Any,
    started: float,
) -> list[Sample]:
    end = started + args.minutes * 60
    next_sample = started
    stand_in = store.autovacuum_off()
    if stand_in:
        print(
            f"autovacuum is off on this server: the soak VACUUMs the store every "
            f"{VACUUM_EVERY:.0f}s in its place (production servers run autovacuum)",
            flush=True,
        )
    next_vacuum = started + VACUUM_EVERY
    samples: list[Sample] = []
    while (now := time.monotonic()) < end:
        if stand_in and now >= next_vacuum:
            store.vacuum()
            next_vacuum += VACUUM_EVERY
        if now >= next_sample:
            taken = await sample(args, started, processes, store, backend)
            samples.append(taken)
            rss = ", ".join(f"{k} {v:.1f}" for k, v in sorted(taken.rss.items()))
            print(
                f"[{taken.elapsed:6.0f}s] rss MiB: {rss} | store {taken.store_mib:.2f} MiB, "
                f"{taken.jobs} jobs ({taken.finished} final) | enqueued {len(load.ids)}",
                flush=True,
            )
            next_sample += args.sample
        tick_started = time.monotonic()
        await load.tick()
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick_started)))
    return samples


async def drain(backend: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = await backend.job_count(filter=JobFilter(states=tuple(LIVE_STATES)))
        if live == 0:
            return True
        await asyncio.sleep(1)
    return False


def report(
    args: argparse.Namespace,
    samples: list[Sample],
    statuses: Counter[int],
    drained: bool,
    died: list[str],
    codes: dict[str, int | None],
) -> int:
    warm = max(30.0, args.minutes * 60 / 5)
    run_end = samples[-2].elapsed if len(samples) > 1 else samples[-1].elapsed
    after_warmup = [s for s in samples[:-1] if s.elapsed >= warm] or samples[-1:]
    print("\nRSS (MiB) per process: after warm-up -> end (max over the run)")
    memory_ok = True
    for name in sorted(samples[0].rss):
        base = after_warmup[0].rss.get(name)
        last = samples[-2].rss.get(name) if len(samples) > 1 else None
        peak = max(s.rss.get(name, 0.0) for s in samples)
        if base is None or last is None:
            print(f"  {name}: not measured")
            memory_ok = False
            continue
        ok = last <= base + args.rss_slack
        memory_ok &= ok
        hours = max(run_end - after_warmup[0].elapsed, 1.0) / 3600
        print(
            f"  {name}: {base:.1f} -> {last:.1f} (max {peak:.1f}), growth "
            f"{(last - base) / hours:+.1f} MiB/hour, bound +{args.rss_slack:.0f} MiB: "
            f"{'ok' if ok else 'EXCEEDED'}"
        )
    during = samples[:-1]  # the last sample is taken after the drain
    middle = [s.store_mib for s in during if run_end / 3 <= s.elapsed < 2 * run_end / 3]
    last_third = [s.store_mib for s in during if s.elapsed >= 2 * run_end / 3]
    store_ok = bool(middle and last_third) and max(last_third) <= (
        STORE_GROWTH * max(middle) + STORE_SLACK_MIB
    )
    jobs_seen = [s.jobs for s in samples]
    print(
        f"\nstore: middle third max {max(middle, default=0):.2f} MiB, last third max "
        f"{max(last_third, default=0):.2f} MiB, final {samples[-1].store_mib:.2f} MiB; "
        f"rows: max {max(jobs_seen)}, final {jobs_seen[-1]} (ttl {args.ttl:.0f}s, prune every "
        f"{PRUNE_INTERVAL:.0f}s)"
    )
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    print(f"API answers: {dict(sorted(statuses.items()))}; exit codes {codes}")
    drain_ok = drained and server_errors == 0 and not died
    verdicts = {
        "MEMORY": memory_ok,
        "STORE": store_ok,
        "DRAIN": drain_ok,
    }
    for name, ok in verdicts.items():
        print(f"{name}: {'PASS' if ok else 'FAIL'}")
    if not drained:
        print("  jobs were still live after the drain timeout")
    if died:
        print(f"  processes died during the run: {died}")
    return 0 if all(verdicts.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ttl", type=float, default=30.0, help="result TTL in seconds")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rss-slack", type=float, default=32.0, help="allowed growth, MiB")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(10**6)
    print(
        f"soak: {args.minutes:g} min on {args.backend}, {args.workers} workers + the API, "
        f"result ttl {args.ttl:g}s, seed {args.seed}",
        flush=True,
    )
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
