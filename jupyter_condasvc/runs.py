"""Run history: every start of a service, read from the journal.

A *run* is one activation of a unit, named by systemd's invocation ID.  The
user manager writes its own entries about each run into the user's journal
(``USER_UNIT=<unit>``, ``USER_INVOCATION_ID=<id>``, a ``MESSAGE_ID`` per
kind); they are the source of truth, so the history survives Jupyter
restarts and includes runs a timer started while Jupyter was down:

* "Starting ..." (``JOB_TYPE=start``, ``JOB_ID``): the run begins;
* "Main process exited" (``EXIT_CODE``, ``EXIT_STATUS``);
* "Deactivated successfully" / "Failed with result '...'" (``UNIT_RESULT``):
  the run ends;
* "Scheduled restart job" (``N_RESTARTS``): the next run is a restart.

The trigger of a run: ``manual`` when its start job is one a user asked for
through jupyter_condasvc (the job IDs are kept in the state directory, see
:meth:`ServiceStore.mark_manual`), ``restart`` after a scheduled restart,
otherwise ``timer`` for a scheduled service and ``boot`` (start at login or
boot, or a start from outside jupyter_condasvc) for the others.

A run's own log is the journal slice ``_SYSTEMD_INVOCATION_ID=<id>`` (its
output) plus the manager's entries with ``USER_INVOCATION_ID=<id>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from .errors import InvalidSpec, NotFound
from .journal.query import LogEntry, as_int, as_str, journal_module, read_entry, walk
from .timestamps import usec_to_iso
from .units import RUN_END_IDENTIFIER

MSG_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
MSG_EXITED = "98e322203f7a4ed290d09fe03c09fe15"
MSG_FAILED = "d9b373ed55a64feb8242e02dbe79a49c"
MSG_SUCCESS = "7ad2d189f7e94e70a38c781354c45a3a"
MSG_RESTART_SCHEDULED = "5eb03494b6584870a536b337290809b3"
MSG_STOPPED = "9d1aaa27d60140bd96365438aad20286"
MSG_JOB_DONE = "be02cf6855d2428ba40df7e9d022f03d"
#: Our own: the line the unit's ExecStopPost= writes (systemd logs a *successful* end only at debug level).
RUN_END = "condasvc-run-end"
_RUN_END_LINE = re.compile(r"^result=(?P<result>[a-z-]*) exit=(?P<code>[a-z]*) status=(?P<status>\S*)$")

#: A manual start job and its run's first entry are this close in time (job IDs restart with the manager).
MANUAL_MATCH_SEC = 600

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Run:
    """One run of a service (JSON: ``asdict``)."""

    id: str
    trigger: str
    start: str
    start_usec: int
    end: Optional[str] = None
    end_usec: Optional[int] = None
    duration_sec: Optional[float] = None
    #: success, exit-code, signal, timeout, watchdog, ... (systemd's UNIT_RESULT); null while running.
    result: Optional[str] = None
    #: exited, killed, dumped; the exit status (exited) or the signal's name (killed, dumped).
    exit_code: Optional[str] = None
    exit_status: Optional[int] = None
    signal: Optional[str] = None
    #: running, finished (result success), failed, or unknown (no end recorded and not the current run).
    state: str = "unknown"
    #: For notebooks: this run's executed copy exists (GET .../runs/{id}/notebook).
    has_notebook: bool = False

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


def build_runs(
    entries: Iterable[Mapping[str, Any]],
    *,
    manual_jobs: Mapping[int, int],
    scheduled: bool,
    current_id: Optional[str] = None,
    current_active: bool = False,
) -> List[Run]:
    """Runs from the manager's entries about one unit, oldest first (pure).

    ``entries``: dicts with ``MESSAGE_ID``, ``USER_INVOCATION_ID``, ``JOB_ID``,
    ``JOB_TYPE``, ``UNIT_RESULT``, ``EXIT_CODE``, ``EXIT_STATUS``, ``usec``.
    """
    runs: Dict[str, Run] = {}
    restart_next = False
    for e in entries:
        inv = e.get("USER_INVOCATION_ID")
        if not inv:
            continue
        usec = int(e["usec"])
        mid = e.get("MESSAGE_ID")
        run = runs.get(inv)
        if run is None:
            job = e.get("JOB_ID")
            asked = job is not None and job in manual_jobs and abs(manual_jobs[job] - usec / 1e6) < MANUAL_MATCH_SEC
            trigger = "manual" if asked else "restart" if restart_next else "timer" if scheduled else "boot"
            run = runs[inv] = Run(id=inv, trigger=trigger, start=usec_to_iso(usec), start_usec=usec)
            restart_next = False
        if mid == RUN_END:
            run.result = e.get("UNIT_RESULT") or run.result
            _set_exit(run, e.get("EXIT_CODE"), e.get("EXIT_STATUS"))
            if run.end_usec is None:
                _end(run, usec)
        elif mid == MSG_EXITED:
            _set_exit(run, e.get("EXIT_CODE"), e.get("EXIT_STATUS"))
        elif mid in (MSG_FAILED, MSG_SUCCESS):
            run.result = e.get("UNIT_RESULT") or ("success" if mid == MSG_SUCCESS else "failed")
            if run.end_usec is None:
                _end(run, usec)
        elif mid == MSG_RESTART_SCHEDULED:
            restart_next = True
        elif mid == MSG_STOPPED and run.end_usec is None:
            run.result = run.result or "success"
            _end(run, usec)
        elif mid == MSG_JOB_DONE and e.get("JOB_TYPE") == "start" and run.end_usec is None:
            # the start job itself failed (the program could not be executed, a start limit...)
            run.result = run.result or "failed"
            _end(run, usec)
    for run in runs.values():
        if run.end_usec is None:
            run.state = "running" if current_active and run.id == current_id else "unknown"
        else:
            run.state = "finished" if run.result == "success" else "failed"
    return list(runs.values())


def _set_exit(run: Run, code: Any, status: Any) -> None:
    if not code:
        return
    run.exit_code = str(code)
    text = str(status) if status is not None else ""
    if text.lstrip("-").isdigit():
        run.exit_status, run.signal = int(text), None
    elif text:
        run.exit_status, run.signal = None, text if text.startswith("SIG") else f"SIG{text}"


def _end(run: Run, usec: int) -> None:
    run.end_usec = usec
    run.end = usec_to_iso(usec)
    run.duration_sec = round((usec - run.start_usec) / 1e6, 6)


def _manager_fields(fields: Mapping[str, Any], usec: int) -> Dict[str, Any]:
    if as_str(fields.get("SYSLOG_IDENTIFIER")) == RUN_END_IDENTIFIER:
        m = _RUN_END_LINE.match(as_str(fields.get("MESSAGE")) or "")
        return {
            "MESSAGE_ID": RUN_END if m else None,
            "USER_INVOCATION_ID": as_str(fields.get("_SYSTEMD_INVOCATION_ID")),
            "UNIT_RESULT": m.group("result") or None if m else None,
            "EXIT_CODE": m.group("code") or None if m else None,
            "EXIT_STATUS": m.group("status") or None if m else None,
            "usec": usec,
        }
    return {
        "MESSAGE_ID": as_str(fields.get("MESSAGE_ID")),
        "USER_INVOCATION_ID": as_str(fields.get("USER_INVOCATION_ID")),
        "JOB_ID": as_int(fields.get("JOB_ID")),
        "JOB_TYPE": as_str(fields.get("JOB_TYPE")),
        "UNIT_RESULT": as_str(fields.get("UNIT_RESULT")),
        "EXIT_CODE": as_str(fields.get("EXIT_CODE")),
        "EXIT_STATUS": as_int(fields.get("EXIT_STATUS")),
        "usec": usec,
    }


def manager_entries(unit: str, uid: int, *, max_runs: int, max_scan: int = 200_000) -> List[Dict[str, Any]]:
    """The manager's entries (and our run-end lines) about ``unit``: its newest ``max_runs`` runs and the one
    before, oldest first.

    Blocking: run off the event loop.  Only entries journald attributes to
    the user's manager process (``_COMM=systemd``, trusted fields) count, so
    a service printing ``USER_UNIT=`` fields cannot forge a run.
    """
    journal = journal_module()
    reader = journal.Reader(flags=journal.LOCAL_ONLY)
    try:
        reader.add_match(f"USER_UNIT={unit}", f"_UID={uid}", "_COMM=systemd")
        reader.add_disjunction()
        reader.add_match(f"SYSLOG_IDENTIFIER={RUN_END_IDENTIFIER}", f"_SYSTEMD_USER_UNIT={unit}", f"_UID={uid}")
        reader.seek_tail()
        out: List[Dict[str, Any]] = []
        seen: List[str] = []
        scanned = 0
        for usec in walk(reader, backward=True):
            scanned += 1
            if usec is None or scanned > max_scan:
                break
            entry = _manager_fields(reader._get_all(), usec)
            inv = entry["USER_INVOCATION_ID"]
            if inv and inv not in seen:
                seen.append(inv)
                if len(seen) > max_runs + 1:  # one more: whether the oldest kept run was a restart
                    break
            out.append(entry)
        out.reverse()
        return out
    finally:
        reader.close()


def run_log(unit: str, uid: int, run_id: str, *, n: int) -> Dict[str, Any]:
    """The journal slice of one run: its output and the manager's entries about it, oldest first (blocking)."""
    journal = journal_module()
    reader = journal.Reader(flags=journal.LOCAL_ONLY)
    try:
        reader.add_match(f"_SYSTEMD_INVOCATION_ID={run_id}", f"_SYSTEMD_USER_UNIT={unit}", f"_UID={uid}")
        reader.add_disjunction()
        reader.add_match(f"USER_INVOCATION_ID={run_id}", f"USER_UNIT={unit}", f"_UID={uid}", "_COMM=systemd")
        reader.seek_head()
        entries: List[LogEntry] = []
        more = False
        for usec in walk(reader):
            if usec is None:
                break
            if len(entries) >= n:
                more = True
                break
            entries.append(read_entry(reader, unit))
        return {"entries": entries, "more_after": more}
    finally:
        reader.close()


# --------------------------------------------------------------------------
# The service layer's view (async; journal reads off the event loop, like a log page)

_ACTIVE = ("active", "activating", "deactivating", "reloading")


def _invocation_hex(value: Any) -> Optional[str]:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex() or None
    if isinstance(value, list):
        return bytes(value).hex() or None
    return None


async def list_runs(services: Any, name: str, *, limit: int = 50) -> Dict[str, Any]:
    """The newest ``limit`` runs of a service, newest first."""
    if limit < 1 or limit > 1000:
        raise InvalidSpec("limit must be between 1 and 1000.", field="limit")
    record = await asyncio.to_thread(services.store.require_ours, name)
    unit = record.unit
    props = await services.systemd.get_unit_properties(unit)
    current = _invocation_hex(props.get("InvocationID"))
    entries = await asyncio.to_thread(manager_entries, unit, os.getuid(), max_runs=limit)
    manual = await asyncio.to_thread(services.store.manual_jobs, name)
    runs = build_runs(
        entries,
        manual_jobs=manual,
        scheduled=record.scheduled,
        current_id=current,
        current_active=props.get("ActiveState") in _ACTIVE,
    )[-limit:]
    runs_dir = services.store.runs_dir(name)
    copies = set(
        await asyncio.to_thread(lambda: [p.stem for p in runs_dir.glob("*.ipynb")] if runs_dir.is_dir() else [])
    )
    out = []
    for run in reversed(runs):
        if run.end_usec is None and run.id == current and props.get("ActiveState") not in _ACTIVE:
            # written before units logged their end: the unit's own properties know how its last run ended
            end = props.get("InactiveEnterTimestamp")
            if end:
                _end(run, int(end))
            run.result = props.get("Result")
            run.state = "finished" if run.result == "success" else "failed"
        run.has_notebook = run.id in copies
        item = run.to_json()
        if run.state == "running":
            item["progress"] = props.get("StatusText") or None
        out.append(item)
    return {"name": name, "unit": unit, "runs": out}


def _check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id or ""):
        raise NotFound(f"'{run_id}' is not a run id (32 hex digits: systemd's invocation ID).")
    return run_id


async def get_run(services: Any, name: str, run_id: str) -> Dict[str, Any]:
    _check_run_id(run_id)
    for run in (await list_runs(services, name, limit=1000))["runs"]:
        if run["id"] == run_id:
            return run
    raise NotFound(f"'{name}' has no run {run_id} in the journal (it may have been rotated away).")


async def get_run_log(services: Any, name: str, run_id: str, *, n: int = 1000) -> Dict[str, Any]:
    _check_run_id(run_id)
    record = await asyncio.to_thread(services.store.require_ours, name)
    page = await asyncio.to_thread(run_log, record.unit, os.getuid(), run_id, n=n)
    return {"name": name, "unit": record.unit, "run": run_id, **page}


async def get_run_notebook(services: Any, name: str, run_id: str) -> Dict[str, Any]:
    """The executed copy this run wrote (notebook services), as notebook JSON."""
    _check_run_id(run_id)
    await asyncio.to_thread(services.store.require_ours, name)
    path = services.store.runs_dir(name) / f"{run_id}.ipynb"
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            f"Run {run_id} of '{name}' kept no executed copy (not a notebook run, or removed by retention)."
        ) from None
    return json.loads(text)
