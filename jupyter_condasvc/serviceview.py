"""A service as the API shows it: typed views built from its record and its units' properties.

Pure (no I/O): :class:`services.ServiceManager` gathers the inputs (the
record, the signal-fed properties, the memory/CPU reading, the health file)
and these functions shape them into the JSON of ``GET services/{name}``
(``Service`` in openapi.yaml), which the status stream pushes too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, TypedDict

from .exitreason import exit_reason
from .redaction import redact
from .store import ServiceRecord
from .timestamps import timestamp_iso, u64_or_none

if TYPE_CHECKING:
    from .systemd import Properties
#: ActiveState values in which a unit has processes (memory and CPU can be read).
RUNNING_STATES = ("active", "activating", "deactivating", "reloading")


class TimerView(TypedDict):
    """A scheduled service's timer (``status.schedule``)."""

    timer_state: Optional[str]
    armed: bool
    timer_enabled: Optional[str]
    next_run: Optional[str]
    last_run: Optional[str]


class _Status(TypedDict):
    load_state: Optional[str]
    active_state: Optional[str]
    sub_state: Optional[str]
    result: Optional[str]
    unit_file_state: Optional[str]
    main_pid: Optional[int]
    n_restarts: Optional[int]
    exec_main_status: Optional[int]
    exec_main_code: Optional[int]
    active_enter_timestamp: Optional[str]
    inactive_enter_timestamp: Optional[str]
    state_change_timestamp: Optional[str]
    status_text: Optional[str]
    memory_current: Optional[int]
    cpu_usage_nsec: Optional[int]
    fragment_path: Optional[str]
    load_error: Optional[str]
    start_limit_hit: bool
    crash_looping: bool
    exit_reason: Optional[str]


class ServiceStatus(_Status, total=False):
    """``status`` of a service; ``schedule`` and ``health`` only when the spec has them."""

    schedule: TimerView
    health: Optional[Dict[str, Any]]


class ServiceView(TypedDict):
    """One service as ``GET services/{name}`` answers it."""

    name: str
    unit: str
    spec: Dict[str, Any]
    resolved: Dict[str, Any]
    created: Optional[float]
    updated: Optional[float]
    unit_changed: Optional[float]
    status: ServiceStatus
    warnings: List[str]
    host: str


class _Preview(TypedDict):
    unit_name: str
    unit: str
    variables: List[str]
    activation: Dict[str, str]
    timer: Optional[str]
    path_unit: Optional[str]
    warnings: List[str]


class PreviewView(_Preview, total=False):
    """``POST preview``: the files a spec would write, without writing them; ``next_runs`` with a schedule."""

    next_runs: List[str]


class UnitText(TypedDict):
    """``GET services/{name}/unit``: the unit file as it is on disk (None if it is gone)."""

    unit_name: str
    path: str
    unit: Optional[str]


def _load_error(props: Properties) -> Optional[str]:
    """systemd's reason when the unit is not loaded (e.g. a unit file edited by hand into an invalid one)."""
    if props.get("LoadState") in ("loaded", None):
        return None
    error = props.get("LoadError") or ("", "")
    message = error[1] if len(error) > 1 else ""
    return message or f"The unit is {props.get('LoadState')}."


#: Results after which Restart=on-failure restarts (always restarts after any result).
_ON_FAILURE = ("exit-code", "signal", "core-dump", "timeout", "watchdog")


def _start_limit_hit(props: Properties) -> bool:
    """Failed and not restarted although its Restart= policy would have: the start limit stopped it.

    systemd keeps the crash's own result (exit-code, ...) when its start limit ends a crash loop, so
    Result alone says start-limit-hit only when the last run had succeeded.
    """
    if props.get("ActiveState") != "failed":
        return False
    result, restart = props.get("Result"), props.get("Restart")
    return result == "start-limit-hit" or restart == "always" or (restart == "on-failure" and result in _ON_FAILURE)


def _crash_looping(props: Properties, now_usec: Optional[int] = None) -> bool:
    """Restarted automatically at least twice, and the last crash is recent (within the start-limit interval).

    Evaluated when the unit's properties change, which a loop does at every crash.
    """
    if _start_limit_hit(props) or (props.get("NRestarts") or 0) < 2:
        return False
    if props.get("SubState") == "auto-restart":
        return True
    if props.get("ActiveState") not in ("active", "activating"):
        return False
    last_crash = props.get("InactiveEnterTimestamp") or 0
    window = props.get("StartLimitIntervalUSec") or 10_000_000
    now = now_usec if now_usec is not None else int(time.time() * 1e6)
    return bool(last_crash) and now - last_crash < max(window, 10_000_000)


def timer_view(props: Properties) -> TimerView:
    """A timer's properties as ``status.schedule``."""
    return {
        "timer_state": props.get("ActiveState"),
        # armed: the timer runs, so the schedule fires; paused: stopped (resume re-arms it).
        "armed": props.get("ActiveState") in ("active", "activating", "reloading"),
        "timer_enabled": props.get("UnitFileState"),
        "next_run": timestamp_iso(props.get("NextElapseUSecRealtime")),
        "last_run": timestamp_iso(props.get("LastTriggerUSec")),
    }


def service_status(
    spec: Dict[str, Any], props: Properties, live: Properties, memory_enforced: Optional[bool] = None
) -> ServiceStatus:
    """The unit's state as ``status`` (without ``schedule``/``health``); ``live``: MemoryCurrent, CPUUsageNSec."""
    return {
        "load_state": props.get("LoadState"),
        "active_state": props.get("ActiveState"),
        "sub_state": props.get("SubState"),
        "result": props.get("Result"),
        "unit_file_state": props.get("UnitFileState"),
        "main_pid": props.get("MainPID") or None,
        "n_restarts": props.get("NRestarts"),
        "exec_main_status": props.get("ExecMainStatus"),
        "exec_main_code": props.get("ExecMainCode"),
        "active_enter_timestamp": timestamp_iso(props.get("ActiveEnterTimestamp")),
        "inactive_enter_timestamp": timestamp_iso(props.get("InactiveEnterTimestamp")),
        "state_change_timestamp": timestamp_iso(props.get("StateChangeTimestamp")),
        "status_text": props.get("StatusText") or None,
        "memory_current": u64_or_none(live.get("MemoryCurrent")),
        "cpu_usage_nsec": u64_or_none(live.get("CPUUsageNSec")),
        "fragment_path": props.get("FragmentPath"),
        "load_error": _load_error(props),
        "start_limit_hit": _start_limit_hit(props),
        "crash_looping": _crash_looping(props),
        "exit_reason": exit_reason(props, spec.get("memory_max"), memory_enforced),
    }


def service_view(name: str, record: ServiceRecord, status: ServiceStatus, warnings: List[str]) -> ServiceView:
    """The whole service: its (redacted) spec, what it resolved to, its times and ``status``."""
    return {
        "name": name,
        "unit": record.unit,
        "spec": redact(dict(record.spec)),
        "resolved": record.resolved,
        "created": record.created,
        "updated": record.updated,
        "unit_changed": record.last_unit_change,
        "status": status,
        "warnings": warnings,
        "host": "local",  # where the service runs, as seen from here; a remote host's bridge answers are re-tagged
    }
