"""A worker process whose only job never returns (run by test_process_exit.py)."""

from __future__ import annotations

import asyncio
import sys
import threading

from workhorse import Workhorse

app = Workhorse(sys.argv[1] if len(sys.argv) > 1 else "memory://")
never = threading.Event()


@app.task
def stuck() -> None:
    print("started", flush=True)
    never.wait()


async def main() -> None:
    await stuck.enqueue()
    await app.worker(shutdown_grace=0.3, lease=5, heartbeat_interval=0.5).run()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
