"""Running ``_child.py`` in a separate process, for the tests that need one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("_child.py")


async def run_child(*args: str, timeout: float = 100) -> tuple[int, str, str]:
    """Run ``_child.py`` with ``args``; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()
