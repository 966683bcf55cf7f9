"""Linux inotify through ctypes: tells the change feed the moment the database's files
are written, so that an idle worker's event loop sleeps in the kernel until then
instead of waking on a timer.

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
import struct
from pathlib import Path

_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class FileWatch:
    """Tells whether a file of one SQLite database (main file, ``-wal``) was written.

    Its descriptor never blocks: wait until it is readable (an event loop's reader,
    ``select``), then :meth:`drain` it."""

    def __init__(self, inotify_fd: int, names: frozenset[str]) -> None:
        self._fd = inotify_fd
        self._names = names

    def fileno(self) -> int:
        """The inotify descriptor, readable once an event is waiting."""
        return self._fd

    def drain(self) -> bool:
        """Read every waiting event without blocking; True if the database's files were
        written (or events overflowed: then it cannot tell, and says yes)."""
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

    def close(self) -> None:
        """Release the inotify descriptor (idempotent, never raises)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


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
