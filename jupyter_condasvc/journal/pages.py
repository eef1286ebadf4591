"""Give back the journal file pages that this process's sd-journal readers hold mapped.

sd-journal reads journal files through shared read-only ``mmap``s, one set
per open ``Reader``.  Every page a reader touched stays counted in the
server's RSS, once per reader: twenty log followers of the same 8 MiB user
journal showed as ~60 MiB of RSS, all of it page cache that journald and
every reader share (the server's PSS for those files was ~13 MiB).
``madvise(MADV_DONTNEED)`` on such a mapping only drops this process's
page-table entries; the file's contents stay in the page cache and a reader
that needs a page again faults it back in (a minor fault, no I/O).  The
follow hub calls this now and then while it has followers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any, Optional

MADV_DONTNEED = 4
#: the journal directories (persistent and volatile) whose files sd-journal maps
JOURNAL_DIRS = ("/var/log/journal/", "/run/log/journal/")

_madvise: Optional[Any] = None


def _libc_madvise() -> Optional[Any]:
    global _madvise
    if _madvise is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fn = libc.madvise
        except (OSError, AttributeError):
            return None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        fn.restype = ctypes.c_int
        _madvise = fn
    return _madvise


def journal_mappings(maps_text: str) -> list[tuple[int, int]]:
    """The (start, end) of each shared read-only mapping of a journal file in a ``/proc/PID/maps`` text."""
    out = []
    for line in maps_text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or parts[1] != "r--s":
            continue
        path = parts[5]
        if not path.startswith(JOURNAL_DIRS) or not (path.endswith(".journal") or path.endswith(".journal~")):
            continue
        start, _, end = parts[0].partition("-")
        out.append((int(start, 16), int(end, 16)))
    return out


def release_journal_pages() -> int:
    """Drop this process's page-table entries of every mapped journal file; the bytes of mappings advised."""
    madvise = _libc_madvise()
    if madvise is None:
        return 0
    try:
        with open("/proc/self/maps") as fh:
            ranges = journal_mappings(fh.read())
    except OSError:
        return 0
    advised = 0
    for start, end in ranges:
        if madvise(start, end - start, MADV_DONTNEED) == 0:
            advised += end - start
    return advised
