"""workhorse against its Python peers, side by side, in one command::

    python benchmarks/peers/run.py                       # everything (about 30 minutes on 2 cores)
    python benchmarks/peers/run.py --only workhorse_sqlite,workhorse_postgres

Creates (once) the harness's own virtualenvs under ``benchmarks/peers/``, runs the single
enqueue on every system in two rounds (the first in reverse order), then the whole
workload on each system in turn (each in a subprocess with a time limit: a system that
fails or times out gets a row saying so and the run goes on), and writes
``benchmarks/results/peers.md``, ``peers.png`` and the raw ``peers.json``. With ``--only``,
the other rows are kept from the previous ``peers.json``.

Needs a local Redis (127.0.0.1:6379; the harness uses database 9 alone and flushes it)
and PostgreSQL (127.0.0.1:5432, user postgres, trust auth; it creates and drops databases
named ``peers_*``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PEERS_DIR = Path(__file__).resolve().parent
RESULTS_DIR = PEERS_DIR.parent / "results"
sys.path.insert(0, str(PEERS_DIR))

from harness.registry import ENTRIES, Entry  # noqa: E402
from harness.venvs import VENVS  # noqa: E402

SINGLE_ROUNDS = 2
"""Rounds of single enqueues through every system before the main one: a system's figure
is the median of its rounds, so that the disk's drift over a run (an fsync's latency moves
by a tenth within minutes) weighs alike on every system."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated module names (see systems/)")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--sleep-jobs", type=int, default=2_000)
    parser.add_argument(
        "--single-rounds",
        type=int,
        default=SINGLE_ROUNDS,
        help="rounds of single enqueues on every system before the main one",
    )
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per system")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def bootstrap(args: argparse.Namespace) -> None:
    """Make the virtualenvs, then go on inside the main one (it has matplotlib)."""
    args.results.mkdir(parents=True, exist_ok=True)
    log = args.results / "peers-install.log.tmp"
    for venv in VENVS.values():
        venv.ensure(log)
    python = str(VENVS["main"].python)
    os.execv(python, [python, __file__, *sys.argv[1:], "--in-venv"])


def run_entry(
    entry: Entry, args: argparse.Namespace, workdir: Path, *, single_only: bool = False
) -> dict[str, Any]:
    """Run one system's runner under its time limit (only its single enqueue, with
    ``single_only``); its result, or a failure row."""
    out = workdir / f"{entry.module}.json"
    pid_file = workdir / f"{entry.module}.pids"
    cmd = [
        str(VENVS[entry.venv].python),
        "-m",
        "harness.runner",
        entry.module,
        "--out",
        str(out),
        "--pid-file",
        str(pid_file),
        "--jobs",
        str(args.jobs),
        "--samples",
        str(args.samples),
        "--sleep-jobs",
        str(args.sleep_jobs),
    ]
    if entry.postgres:
        cmd.append("--postgres")
    if single_only:
        cmd.append("--single-only")
    env = {**os.environ, "PYTHONPATH": str(PEERS_DIR)}
    started = time.monotonic()
    log = workdir / f"{entry.module}.log"
    with log.open("wb") as log_out:
        proc = subprocess.Popen(
            cmd,
            cwd=PEERS_DIR,
            env=env,
            stdout=log_out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(args.timeout)
        except subprocess.TimeoutExpired:
            kill_everything(proc, pid_file, entry)
            return {"module": entry.module, "error": f"timed out after {args.timeout:.0f}s"}
    if out.exists():
        result: dict[str, Any] = json.loads(out.read_text())
    else:
        tail = log.read_text(errors="replace")[-1500:]
        result = {"module": entry.module, "error": f"runner exited {proc.returncode}: {tail}"}
    result["seconds"] = time.monotonic() - started
    kill_everything(proc, pid_file, entry)  # nothing should be left; make sure of it
    return result


def kill_everything(proc: subprocess.Popen[bytes], pid_file: Path, entry: Entry) -> None:
    """Kill the runner and every worker it started, then clean the stores it used."""
    pids = [proc.pid]
    if pid_file.exists():
        pids += [int(p) for p in pid_file.read_text().split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    from harness import pg
    from harness.effects import EffectsReader

    with contextlib.suppress(Exception):
        EffectsReader().flush_db()
    if entry.postgres:
        with contextlib.suppress(Exception):
            pg.drop_database(pg.dsn_for(f"peers_{entry.module}"))


def single_rounds(
    entries: list[Entry], args: argparse.Namespace, workdir: Path
) -> dict[str, list[float]]:
    """Single-enqueue rates of every system in ``args.single_rounds`` rounds, each round
    through all of them (every other one in reverse order)."""
    rates: dict[str, list[float]] = {entry.module: [] for entry in entries}
    for index in range(args.single_rounds):
        order = entries[::-1] if index % 2 == 0 else entries
        for entry in order:
            result = run_entry(entry, args, workdir, single_only=True)
            rate = result.get("enqueue_single")
            shown = f"{rate:,.0f}/s" if rate else result.get("error", "?").splitlines()[0]
            print(f"[peers] single round {index + 1}: {entry.module} {shown}", flush=True)
            if rate:
                rates[entry.module].append(rate)
    return rates


def with_rounds(result: dict[str, Any], rates: list[float]) -> None:
    """Report the median of the earlier rounds and the main run's own single enqueue."""
    if result.get("enqueue_single"):
        rates = [*rates, result["enqueue_single"]]
    if rates:
        result["enqueue_single_rounds"] = rates
        result["enqueue_single"] = statistics.median(rates)


def main() -> None:
    args = parse_args()
    if not args.in_venv:
        bootstrap(args)
        return
    from harness import report

    wanted = set(args.only.split(",")) if args.only else None
    entries = [e for e in ENTRIES if wanted is None or e.module in wanted]
    if wanted and len(entries) != len(wanted):
        known = ", ".join(e.module for e in ENTRIES)
        sys.exit(f"unknown system in --only (known: {known})")
    json_path = args.results / "peers.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() and wanted else {}
    rows = {r["module"]: r for r in previous.get("rows", [])}
    machine: dict[str, str] = {**previous.get("machine", {}), **report.machine_info()}
    data: dict[str, Any] = {"machine": machine, "params": {**vars(args), "results": "."}}

    def save() -> None:
        data["rows"] = [rows[e.module] for e in ENTRIES if e.module in rows]
        json_path.write_text(json.dumps(data, indent=2, default=str))

    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        rounds = single_rounds(entries, args, Path(tmp))
        for entry in entries:
            print(f"[peers] {entry.module} ... (load {os.getloadavg()[0]:.2f})", flush=True)
            result = run_entry(entry, args, Path(tmp))
            result["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
            with_rounds(result, rounds[entry.module])
            rows[entry.module] = result
            print(f"[peers]   {report.one_line(result)}", flush=True)
            save()
    machine["load_after"] = report.load_text()
    save()
    report.write(data, args.results / "peers.md", args.results / "peers.png")
    print(f"[peers] wrote {args.results / 'peers.md'} and peers.png", flush=True)


if __name__ == "__main__":
    main()
