"""Linux inotify through ctypes: tells the change feed the moment the database's files
are written, so an idle watcher sleeps in the kernel instead of waking on a timer.

A commit in WAL mode appends to ``<db>-wal`` with ``write(2)``, which raises
``IN_MODIFY`` on the folder's watch; checkpoints and a re-created WAL raise it on the
file itself or ``IN_CREATE``/``IN_MOVED_TO``. Elsewhere (macOS, a libc without
inotify) :func:`open_file_watch` returns None and the caller polls instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import select
import struct
import time
from pathlib import Path

_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_POLL_RESOLUTION = 0.001
"""poll(2) counts whole milliseconds."""
_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class FileWatch:
    """Waits until a file of one SQLite database (main file, ``-wal``) is written, or
    until :meth:`interrupt` is called from another thread."""

    def __init__(self, inotify_fd: int, names: frozenset[str]) -> None:
        self._fd = inotify_fd
        self._names = names
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._poll.register(self._wake_read, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if the database's files were written
        (or events overflowed: then it cannot tell, and says yes). A wait shorter than
        a millisecond, which ``poll(2)`` cannot time, sleeps and then looks at once."""
        if 0 < timeout < _POLL_RESOLUTION:
            time.sleep(timeout)
            timeout = 0
        ready = self._poll.poll(max(0, int(timeout * 1000)))
        written = False
        for fd, _ in ready:
            if fd == self._fd:
                written = self._drain_events() or written
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 512)
        return written

    def interrupt(self) -> None:
        """Make a blocked :meth:`wait` return now (thread-safe)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def close(self) -> None:
        """Release the inotify descriptor and the wake-up pipe."""
        for fd in (self._fd, self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _drain_events(self) -> bool:
        written = False
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return written
            offset = 0
            while offset + _EVENT_HEADER.size <= len(data):
                _, mask, _, length = _EVENT_HEADER.unpack_from(data, offset)
                start = offset + _EVENT_HEADER.size
                name = data[start : start + length].rstrip(b"\0").decode(errors="replace")
                offset = start + length
                if mask & _IN_Q_OVERFLOW or name in self._names:
                    written = True


def open_file_watch(database: Path) -> FileWatch | None:
    """A watch on ``database`` and its ``-wal`` file, or None where inotify is missing."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        init = libc.inotify_init1
        add_watch = libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return None
    folder = str(database.parent).encode()
    if add_watch(fd, folder, _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO) < 0:
        code = ctypes.get_errno()
        os.close(fd)
        if code in {errno.ENOSPC, errno.EACCES, errno.ENOENT, errno.ENOTDIR}:
            return None
        raise OSError(code, f"inotify_add_watch({database.parent}): {os.strerror(code)}")
    name = database.name
    return FileWatch(fd, frozenset({name, f"{name}-wal"}))
