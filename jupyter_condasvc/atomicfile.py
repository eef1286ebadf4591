"""Files written atomically: a temporary file beside the target, flushed and fsynced, then renamed into place, so a
reader (or a crash) sees the old file or the new one, never half of one.  Standard library only: the notebook runner
and the health prober import it inside services.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]


def prepare(path: Path, text: str, mode: int) -> str:
    """Write ``text`` to a new temporary file beside ``path``; return its name (not yet in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp


def unlink_quietly(path: PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory."""
    tmp = prepare(path, text, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
