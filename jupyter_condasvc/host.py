"""What this host can do for services: its facts, and the report ``GET host`` serves.

Reads files and asks the systemd client; no HTTP.  The filesystem reads are
small and run off the event loop.  The words (each finding's fix) are the
doctor's checks (:mod:`jupyter_condasvc.doctor`): the report derives them.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path
from typing import Any, Dict, List, Optional

LINGER_DIR = Path("/var/lib/systemd/linger")
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


def user_name() -> str:
    """This process's user name (its uid as text when the passwd database has none)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def linger_enabled(user: Optional[str] = None, linger_dir: Optional[Path] = None) -> bool:
    return ((linger_dir or LINGER_DIR) / (user or user_name())).exists()


PROC = Path("/proc")


def logind_available(proc: Optional[Path] = None) -> bool:
    """Is systemd-logind running (a process of that name is visible in /proc)?

    Without it ``loginctl enable-linger`` cannot work, and nothing starts a
    user manager at boot or login.  (Its /run/systemd/{seats,users} folders
    may exist without it: tmpfiles creates them.)
    """
    proc = proc or PROC
    try:
        entries = list(proc.iterdir())
    except OSError:
        return False
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "systemd-logind":
                return True
        except OSError:
            continue
    return False


def pid1_name(proc: Path = Path("/proc/1/comm")) -> Optional[str]:
    """The name of PID 1 ("systemd" on a host booted with it), or None if unreadable."""
    try:
        return proc.read_text().strip() or None
    except OSError:
        return None


def delegated_controllers(control_group: Optional[str]) -> Optional[List[str]]:
    """Controllers enabled for the user manager's cgroup (cgroup v2), or None."""
    if not control_group:
        return None
    for root in CGROUP_ROOTS:
        path = root / control_group.lstrip("/") / "cgroup.controllers"
        try:
            return path.read_text().split()
        except OSError:
            continue
    return None


async def enforced_controllers(systemd: Any, control_group: Optional[str]) -> List[str]:
    """The controllers whose limits the user manager really applies, as systemd shows it.

    cgroup v2: the manager's ``cgroup.controllers``.  Otherwise (a cgroup v1 or
    hybrid host, where controllers can be handed to a user manager by hand)
    ask systemd: the manager's own ``init.scope`` has a ``MemoryCurrent`` only
    when systemd realised the memory controller for it; for cpu, the
    ``CPUUsageNSec`` property, else the cpu line of that scope's processes in
    ``/proc/PID/cgroup`` naming the scope's own cgroup (systemd put it there).
    """
    delegated = await asyncio.to_thread(delegated_controllers, control_group)
    found = list(delegated or [])
    if "memory" in found and "cpu" in found:
        return found
    scope = "org.freedesktop.systemd1.Scope"
    try:
        memory, cpu_usage, scope_group = await asyncio.gather(
            *(
                systemd.get_unit_property("init.scope", scope, prop)
                for prop in ("MemoryCurrent", "CPUUsageNSec", "ControlGroup")
            )
        )
    except Exception:  # noqa: BLE001 - unknown means "not enforced"
        return found
    if "memory" not in found and _real_number(memory):
        found.append("memory")
    if "cpu" not in found:
        if _real_number(cpu_usage):
            found.append("cpu")
        elif scope_group:
            try:
                procs = await systemd.call_manager("GetUnitProcesses", "s", ["init.scope"])
            except Exception:  # noqa: BLE001
                procs = []
            pids = [int(p[1]) for p in (procs[0] if procs else [])]
            if pids:
                if await asyncio.to_thread(_in_cpu_cgroup, pids[0], scope_group):
                    found.append("cpu")
    return found


def _real_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64 - 1


def _in_cpu_cgroup(pid: int, group: str, proc: Optional[Path] = None) -> bool:
    """Does ``/proc/PID/cgroup`` put the process in ``group`` under a v1 hierarchy holding cpu?"""
    try:
        lines = ((proc or PROC) / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if "cpu" in controllers.split(",") and path.rstrip("/").endswith(group.rstrip("/")):
            return True
    return False


def journal_report() -> Dict[str, Any]:
    """Can this user read their services' logs?  Derived from the doctor's journal diagnosis, the one source of
    the journal's states and their fixes: ``readable`` is False only for a real problem (a fresh install whose
    services have not logged yet is "no-logs-yet", readable), ``message`` names the exact path."""
    from .doctor import diagnose

    diagnosis = diagnose()
    return {
        "persistent": diagnosis["storage"] == "persistent",
        "readable": diagnosis["ok"],
        "state": diagnosis["state"],
        "message": diagnosis["message"],
        "path": diagnosis["path"],
        "error": None,
        "fix": diagnosis["fix"],
        "diagnosis": diagnosis,
    }


async def host_report(systemd: Any) -> Dict[str, Any]:
    """``GET host``: each fact and its fix from the doctor's checks, so the banners say what ``doctor`` says."""
    from . import doctor

    user = user_name()
    manager = await doctor.probe_manager(systemd)
    controllers = await enforced_controllers(systemd, manager.control_group) if manager.reachable else None
    journal = await asyncio.to_thread(journal_report)
    linger = await asyncio.to_thread(doctor.linger_check, user)
    cgroups = doctor.cgroups_check(controllers)
    limits: Dict[str, Any] = {
        "controllers": controllers or [],
        "memory_enforced": "memory" in (controllers or []),
        "cpu_enforced": "cpu" in (controllers or []),
    }
    if cgroups["fix"]:
        limits["fix"] = cgroups["fix"]
    return {
        "user": user,
        "manager": manager.to_json(),
        "linger": {"enabled": bool(linger["ok"]), "fix": linger["fix"]},
        "journal": journal,
        "limits": limits,
    }
