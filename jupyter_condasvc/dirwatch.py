"""Has anything changed in these directories? inotify, asked without blocking (Linux).

The service list re-reads records only when the records directory, the state
directory (health files) or the unit directory changed, instead of stat-ing
two files per service on every request. :meth:`DirWatch.poll` drains the
inotify descriptor right there (one non-blocking ``read``), so a change that
finished before the call is always seen: a list right after a create has it.
A directory that does not exist (yet), or any inotify failure, counts as
"changed" on every poll: the caller then does the full check, as without a
watch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Sequence
from typing import Dict, Optional

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED, IN_Q_OVERFLOW = 0x400, 0x800, 0x8000, 0x4000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_EVENT = struct.Struct("iIII")

_libc: Optional[ctypes.CDLL] = None


def _lib() -> Optional[ctypes.CDLL]:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.inotify_init1.argtypes = [ctypes.c_int]
            _libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        except (OSError, AttributeError):
            return None
    return _libc


class DirWatch:
    """A change counter for a few directories."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.generation = 0
        self._wd: Dict[int, str] = {}
        self._fd = -1
        lib = _lib()
        if lib is not None:
            fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0:
                self._fd = fd

    def _arm(self) -> bool:
        """Watch every path not watched yet; True when all are watched."""
        lib = _lib()
        if self._fd < 0 or lib is None:
            return False
        watched = set(self._wd.values())
        for path in self.paths:
            if path in watched:
                continue
            wd = lib.inotify_add_watch(self._fd, os.fsencode(path), MASK)
            if wd < 0:
                return False
            self._wd[wd] = path
        return True

    def poll(self) -> int:
        """The current generation: it changes whenever a watched directory (or a file in it) changed."""
        if self._fd < 0:
            self.generation += 1
            return self.generation
        changed = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                self.close()
                self.generation += 1
                return self.generation
            if not data:
                break
            changed = True
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    self._wd.pop(wd, None)  # gone or moved: watched again (by path) once it exists
        if not self._arm():
            changed = True  # a directory is missing: every poll is a change until it exists
        if changed:
            self.generation += 1
        return self.generation

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._wd.clear()
