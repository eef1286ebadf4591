"""A timer re-armed by the user does not catch up the elapses it missed while paused.

Our timers are ``Persistent=true`` so that runs missed while the user was
logged out or the machine was off happen at the next login. systemd (252)
keeps the last elapse in a stamp file, ``$XDG_DATA_HOME/systemd/timers/stamp-<timer>``
(``~/.local/share/...`` without it) for a user manager, and a timer that
starts computes its next elapse from that file's mtime: a schedule paused by
the user, then started or resumed, fires at once for what it missed. Before
*we* arm a stopped timer (start, restart, resume), its stamp is set to now,
so the next elapse is the next calendar time. The manager arms timers itself
at login and boot: those keep systemd's catch-up.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import List


def stamp_candidates(timer: str) -> List[Path]:
    """Where the user manager keeps ``timer``'s stamp: as systemd finds its data dir ($XDG_DATA_HOME, else
    $HOME, else the passwd entry's home), also looked up from the passwd entry (a server run with another
    $HOME, as in tests)."""
    homes = [os.environ.get("XDG_DATA_HOME")]
    homes += [os.path.join(h, ".local", "share") for h in (os.environ.get("HOME"), _passwd_home()) if h]
    out: List[Path] = []
    for data in homes:
        if data and os.path.isabs(data):
            path = Path(data, "systemd", "timers", f"stamp-{timer}")
            if path not in out:
                out.append(path)
    return out


def _passwd_home() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return ""


def skip_missed_elapses(timer: str) -> bool:
    """Set the stamp of (stopped) ``timer`` to now; False when it has none (never fired: nothing to catch up)."""
    for path in stamp_candidates(timer):
        try:
            os.utime(path)
        except FileNotFoundError:
            continue
        return True
    return False
