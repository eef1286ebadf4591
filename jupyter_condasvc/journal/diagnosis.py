"""What journald does with this user's logs: the facts behind the journal check.

Looks only at files a user may stat: journald's storage mode and split mode
(journald.conf and its drop-ins), whether it still writes its volatile runtime
journal, whether ``user-UID.journal`` exists and is readable, whether the
system journal (where "Suppressed N messages" notes go) is readable.  No
words here: :mod:`jupyter_condasvc.doctor` turns these facts into the
journal check and the diagnosis every surface shows (doctor, ``GET host``,
the logs API, Lab's banners).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

JOURNALD_CONF = Path("/etc/systemd/journald.conf")
JOURNALD_CONF_DIRS = (
    Path("/etc/systemd/journald.conf.d"),
    Path("/run/systemd/journald.conf.d"),
    Path("/usr/lib/systemd/journald.conf.d"),
)


def journald_settings(conf: Path = JOURNALD_CONF, conf_dirs: Sequence[Path] = JOURNALD_CONF_DIRS) -> Dict[str, str]:
    """The [Journal] settings from journald.conf and its drop-ins (later files win)."""
    files = [conf]
    dropins: Dict[str, Path] = {}
    for d in reversed(list(conf_dirs)):  # /etc overrides /run overrides /usr/lib, by file name
        try:
            for p in d.glob("*.conf"):
                dropins[p.name] = p
        except OSError:
            continue
    files += [dropins[k] for k in sorted(dropins)]
    out: Dict[str, str] = {}
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        section = None
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Journal" and "=" in line:
                key, value = line.split("=", 1)
                out[key.strip()] = value.strip()
    return out


def _exists(path: Path) -> bool:
    try:
        path.stat()
        return True
    except PermissionError:
        return True
    except OSError:
        return False


#: The journal's states, as the diagnosis' ``state`` names them (the wire's JournalDiagnosis.state).
JOURNAL_STATES = (
    "ok",
    "no-logs-yet",
    "runtime-journal",
    "not-flushed",
    "volatile",
    "storage-none",
    "split-none",
    "unreadable",
)


@dataclass(frozen=True)
class JournalFacts:
    """Where this user's logs go and whether they can read them (every path absolute)."""

    uid: int
    storage: str  # persistent | volatile | none
    split: str  # journald's SplitMode, lower case
    persistent_root: Path
    runtime_root: Path
    persistent_dir: Path  # <persistent_root>/<machine-id>
    runtime_dir: Path
    user_file: Path
    user_exists: bool
    user_readable: bool
    system_readable: bool
    #: the runtime folder exists beside persistent storage: journald still writes it (after its flush to /var it
    #: removes that folder; it could not, or has not flushed yet: fact 3a of the stack notes)
    on_runtime: bool
    flushed_flag: Path
    flushed: bool
    rate_limit_interval: str
    rate_limit_burst: str

    @property
    def state(self) -> str:
        """One of :data:`JOURNAL_STATES`: the first problem, in the order a fix must follow, else why all is well."""
        if self.storage == "none":
            return "storage-none"
        if self.storage == "volatile":
            return "volatile"
        if self.on_runtime:
            return "runtime-journal" if self.flushed else "not-flushed"
        if self.split == "none" and not self.system_readable:
            return "split-none"
        if self.user_exists and not self.user_readable and not self.system_readable:
            return "unreadable"
        if not self.user_exists and not self.system_readable:
            return "no-logs-yet"
        return "ok"


def journal_facts(
    uid: Optional[int] = None,
    *,
    persistent_root: Path = Path("/var/log/journal"),
    runtime_root: Path = Path("/run/log/journal"),
    machine_id_file: Path = Path("/etc/machine-id"),
    conf: Path = JOURNALD_CONF,
    conf_dirs: Sequence[Path] = JOURNALD_CONF_DIRS,
    flushed_flag: Path = Path("/run/systemd/journal/flushed"),
) -> JournalFacts:
    """The facts for ``uid`` (default: ours); every path injectable, so tests describe any host without root."""
    uid = os.getuid() if uid is None else uid
    settings = journald_settings(conf, conf_dirs)
    storage_setting = settings.get("Storage", "auto").lower()
    try:
        machine_id = machine_id_file.read_text().strip()
    except OSError:
        machine_id = ""
    pdir = persistent_root / machine_id if machine_id else persistent_root
    rdir = runtime_root / machine_id if machine_id else runtime_root
    if storage_setting == "none":
        storage = "none"
    elif storage_setting == "volatile" or (storage_setting == "auto" and not persistent_root.is_dir()):
        storage = "volatile"
    else:
        storage = "persistent" if pdir.is_dir() or storage_setting == "persistent" else "volatile"
    user_file = pdir / f"user-{uid}.journal"
    user_exists = _exists(user_file)
    return JournalFacts(
        uid=uid,
        storage=storage,
        split=settings.get("SplitMode", "uid").lower(),
        persistent_root=persistent_root,
        runtime_root=runtime_root,
        persistent_dir=pdir,
        runtime_dir=rdir,
        user_file=user_file,
        user_exists=user_exists,
        user_readable=user_exists and os.access(user_file, os.R_OK),
        system_readable=any(os.access(p, os.R_OK) for p in (pdir / "system.journal", rdir / "system.journal")),
        on_runtime=storage == "persistent" and pdir.is_dir() and _exists(rdir),
        flushed_flag=flushed_flag,
        flushed=_exists(flushed_flag),
        rate_limit_interval=settings.get("RateLimitIntervalSec", "30s"),
        rate_limit_burst=settings.get("RateLimitBurst", "10000"),
    )
