"""Async client for the user's systemd manager over D-Bus (dbus-fast).

One connection per server.  Method names mirror the manager's D-Bus API
(``start_unit``, ``reset_failed_unit``, ``enable_unit_files``, ...).  Unit
properties are cached per unit and kept current by systemd's own
``PropertiesChanged`` signals (after ``Subscribe``), so reading the status of
many services costs no round trips; only ``MemoryCurrent`` and
``CPUUsageNSec``, which have no change signal, are fetched when asked for.

Jobs (start/stop/restart) are awaited through the ``JobRemoved`` signal and
report systemd's result (``done``, ``failed``, ``timeout``, ...).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from dbus_fast import ErrorType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError
from traitlets import Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from .errors import CondaSvcError, JobFailed, ManagerUnavailable, NotFound

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
UNIT_IFACE = "org.freedesktop.systemd1.Unit"
SERVICE_IFACE = "org.freedesktop.systemd1.Service"
TIMER_IFACE = "org.freedesktop.systemd1.Timer"
PATH_IFACE = "org.freedesktop.systemd1.Path"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"

#: Properties that systemd never signals; read on demand.
UNSIGNALLED = (("MemoryCurrent", SERVICE_IFACE), ("CPUUsageNSec", SERVICE_IFACE))

Listener = Callable[[str, str, Dict[str, Any]], None]
#: A unit's D-Bus properties by name (values made plain: no Variants).
Properties = Dict[str, Any]


@dataclass
class CachedUnit:
    """One unit in the signal-fed property cache.

    ``props`` is updated in place by ``PropertiesChanged`` and replaced by a
    re-read, so its identity tells a view cache whether it was rebuilt.
    """

    props: Properties
    #: A signal invalidated properties (their old values stay until the re-read), or a job or a unit file
    #: change may have changed what no signal reports: re-read before answering.
    stale: bool = False
    #: A daemon-reload happened since the read: what comes from unit files is re-checked (runtime state
    #: survives a reload and keeps being signalled).
    reloaded: bool = False

    @property
    def current(self) -> bool:
        return not self.stale and not self.reloaded


def unit_object_path(unit_name: str) -> str:
    """The D-Bus object path of a unit (systemd's ``bus_label_escape``)."""
    out = []
    for i, ch in enumerate(unit_name.encode()):
        c = chr(ch)
        if (c.isascii() and c.isalpha()) or (c.isdigit() and i > 0):
            out.append(c)
        else:
            out.append(f"_{ch:02x}")
    return UNIT_PATH_PREFIX + ("".join(out) or "_")


def unit_name_from_path(path: str) -> str:
    label = path[len(UNIT_PATH_PREFIX) :]
    return re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), label)


def _plain(value: Any) -> Any:
    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def unreachable_message(address: str, origin: str, exc: BaseException) -> str:
    """Why the manager is unreachable: the address this server was given and the error first, then the fixes."""
    error = str(exc) or type(exc).__name__
    lines = [f"The systemd user manager is not reachable at {address} (from {origin}): {error}."]
    if "{" in address or "}" in address:
        lines.append(
            "That address holds an unexpanded template: a launcher passed it verbatim (JupyterHub does not expand "
            "c.Spawner.environment values). Remove that variable, or set it with a callable per user."
        )
    lines.append(
        "If the address is wrong, fix or unset XDG_RUNTIME_DIR / DBUS_SESSION_BUS_ADDRESS in the server's environment "
        "(without them it uses /run/user/UID/bus), or set c.SystemdManager.bus_address. If it is right, your user "
        "manager is not running: a login session starts it, and `loginctl enable-linger` keeps it running without one. "
        "Containers such as Binder or a plain Docker image have no systemd user manager at all: there services can be "
        "drafted and their unit files previewed, but not run."
    )
    return " ".join(lines)


class SystemdManager(LoggingConfigurable):
    """The user's systemd manager, reached over the user D-Bus."""

    bus_address = Unicode(
        "",
        config=True,
        help="D-Bus address of the user bus. Empty: $DBUS_SESSION_BUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/bus.",
    )
    call_timeout = Float(
        25.0, config=True, help="Seconds to wait for one D-Bus call before reporting the manager unreachable."
    )
    job_timeout = Float(120.0, config=True, help="Seconds to wait for a start/stop/restart job to finish.")
    unsignalled_max_age = Float(
        1.0,
        config=True,
        help="Seconds a MemoryCurrent/CPUUsageNSec reading (systemd never signals them) is reused for status answers.",
    )
    max_in_flight = Int(
        128,
        config=True,
        help="Most D-Bus calls in flight at once. The bus drops clients with too many pending replies (about 250).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bus: Optional[MessageBus] = None
        self._connecting: Optional[asyncio.Future] = None
        self._sem: Optional[asyncio.Semaphore] = None
        #: The one property cache: unit name -> its properties, kept current by systemd's signals.
        self._cache: Dict[str, CachedUnit] = {}
        self._unsignalled: Dict[str, Tuple[Properties, float, Optional[int], bool]] = {}
        self._fetching: Dict[str, List[List[Tuple[Properties, bool]]]] = {}
        #: UnitFileState as it is on disk after our own enable/disable, until the next daemon-reload: systemd keeps
        #: a loaded unit's UnitFileState as it was computed (a failed or running unit says "disabled" after an
        #: enable) and sends no signal; `systemctl enable` hides this by reloading, which we do not.
        self._file_state: Dict[str, Optional[str]] = {}
        #: The GetAll of a unit under way, with the staleness mark it started at: callers that find the
        #: unit stale with the same mark share it instead of asking again (many lists at once, under load).
        self._inflight: Dict[str, Tuple[Tuple[int, int], asyncio.Future]] = {}
        #: Bumped whenever a unit's cached properties are marked stale (per unit) or reloaded (all).
        self._marks: Dict[str, int] = {}
        self._reload_mark = 0
        self._job_waiters: Dict[str, asyncio.Future] = {}
        self._job_results: OrderedDict[str, Tuple[str, str]] = OrderedDict()
        self._listeners: List[Listener] = []
        self._watch_task: Optional[asyncio.Task] = None
        #: The reload not yet sent (callers that ask now share it) and the one in flight.
        self._reload_next: Optional[asyncio.Future] = None
        self._reload_running: Optional[asyncio.Future] = None
        #: The tasks sending them, referenced until done (the event loop keeps only a weak reference).
        self._reload_senders: Set[asyncio.Future] = set()
        #: daemon-reloads this client asked for (each shared one counts once).
        self.reloads = 0
        #: The id of the newest job this client queued, per unit.
        self.last_job: Dict[str, int] = {}

    # -- connection -----------------------------------------------------
    def _address(self) -> str:
        return self.address_origin()[0]

    def address_origin(self) -> Tuple[str, str]:
        """The bus address and where it came from (for messages that must name the real cause)."""
        if self.bus_address:
            return self.bus_address, "c.SystemdManager.bus_address"
        if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return os.environ["DBUS_SESSION_BUS_ADDRESS"], "$DBUS_SESSION_BUS_ADDRESS"
        if os.environ.get("XDG_RUNTIME_DIR"):
            return f"unix:path={os.environ['XDG_RUNTIME_DIR']}/bus", "$XDG_RUNTIME_DIR"
        return f"unix:path=/run/user/{os.getuid()}/bus", f"the default for uid {os.getuid()}"

    @property
    def connected(self) -> bool:
        return self._bus is not None and self._bus.connected

    async def connect(self) -> MessageBus:
        """Connect (once; concurrent callers share the attempt) and subscribe."""
        if self._bus is not None and self._bus.connected:
            return self._bus
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> MessageBus:
        address, origin = self.address_origin()
        try:
            bus = await asyncio.wait_for(MessageBus(bus_address=address).connect(), self.call_timeout)
        # BLE001: any failure means unreachable
        except (OSError, asyncio.TimeoutError, ValueError, Exception) as exc:  # noqa: BLE001
            raise ManagerUnavailable(unreachable_message(address, origin, exc)) from None
        self._sem = asyncio.Semaphore(self.max_in_flight)
        self._cache.clear()
        bus.add_message_handler(self._on_message)
        self._bus = bus
        try:
            for rule in (
                f"type='signal',sender='{SYSTEMD}',interface='{MANAGER_IFACE}'",
                f"type='signal',sender='{SYSTEMD}',interface='{PROPS_IFACE}',member='PropertiesChanged',"
                f"path_namespace='{MANAGER_PATH}/unit'",
            ):
                await self._raw_call(
                    "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", [rule]
                )
            await self._raw_call(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, "Subscribe", "", [])
        except DBusError as exc:
            # e.g. the manager re-executing at this moment: unreachable, try again later
            self._bus = None
            bus.disconnect()
            raise ManagerUnavailable(
                f"The systemd user manager did not accept our subscription: {exc.text or exc.type}."
            ) from None
        except BaseException:
            self._bus = None
            bus.disconnect()
            raise
        self._watch_task = asyncio.ensure_future(self._watch(bus))
        return bus

    async def _watch(self, bus: MessageBus) -> None:
        try:
            await bus.wait_for_disconnect()
        except Exception:  # noqa: BLE001 - a broken connection is a disconnect
            pass
        if self._bus is bus:
            self.log.warning("Lost the connection to the systemd user manager; will reconnect on next use.")
            self._bus = None
            self._cache.clear()
            for fut in self._job_waiters.values():
                if not fut.done():
                    fut.set_exception(ManagerUnavailable("The connection to the systemd user manager was lost."))
            self._emit("", "disconnected", {})

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.disconnect()
        if self._watch_task is not None:
            self._watch_task.cancel()
            self._watch_task = None

    # -- signals --------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """``listener(unit_name, event, data)`` for PropertiesChanged/UnitNew/UnitRemoved/JobRemoved."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def records_changed(self) -> None:
        """Tell listeners that services were created, edited, enabled or deleted.

        Such a change used to come with a daemon-reload, whose Reloading
        signal made listeners re-read; most changes now need no reload, so
        the service layer says so itself (event ``records-changed``).
        """
        self._emit("", "records-changed", {})

    def _emit(self, unit: str, event: str, data: Dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(unit, event, data)
            except Exception:
                self.log.exception("condasvc: systemd listener failed")

    def _on_message(self, msg: Message) -> Optional[bool]:
        if msg.message_type is not MessageType.SIGNAL:
            return None
        if msg.interface == PROPS_IFACE and msg.member == "PropertiesChanged":
            path = msg.path  # a signal always has one (the bus requires it); dbus_fast types it optional
            if path is None or not path.startswith(UNIT_PATH_PREFIX):
                return None
            unit = unit_name_from_path(path)
            _iface, changed, invalidated = msg.body
            cached = self._cache.get(unit)
            values = {k: _plain(v) for k, v in changed.items()}
            if cached is not None:
                cached.props.update(values)
                if invalidated:
                    cached.stale = True
                    self._marks[unit] = self._marks.get(unit, 0) + 1
            for pending in self._fetching.get(unit, ()):
                # A GetAll is under way: its reply may predate this change.
                pending.append((values, bool(invalidated)))
            self._emit(unit, "changed", values)
        elif msg.interface == MANAGER_IFACE:
            if msg.member == "JobRemoved":
                _id, job, unit, result = msg.body
                waiter = self._job_waiters.pop(job, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(result)
                else:
                    self._job_results[job] = (unit, result)
                    while len(self._job_results) > 512:
                        self._job_results.popitem(last=False)
                self._emit(unit, "job-removed", {"job": job, "result": result})
            elif msg.member in ("UnitNew", "UnitRemoved"):
                unit = msg.body[0]
                # UnitRemoved means systemd *unloaded* the unit (e.g. an inactive
                # unit nobody references): its state cannot change until it is
                # loaded again, so the cached properties stay valid.
                self._emit(unit, "new" if msg.member == "UnitNew" else "removed", {})
            elif msg.member == "Reloading" and msg.body and not msg.body[0]:
                # A daemon-reload re-reads unit files; FragmentPath, ExecStart,
                # UnitFileState... may change without a PropertiesChanged.
                self._mark_reloaded()
                self._emit("", "reloaded", {})
        return None

    # -- calls ----------------------------------------------------------
    async def _raw_call(self, dest: str, path: str, iface: str, member: str, signature: str, body: list) -> list:
        bus = self._bus
        if bus is None or not bus.connected:
            bus = await self.connect()
        assert self._sem is not None
        async with self._sem:
            try:
                reply = await asyncio.wait_for(
                    bus.call(
                        Message(
                            destination=dest, path=path, interface=iface, member=member, signature=signature, body=body
                        )
                    ),
                    self.call_timeout,
                )
            except DBusError:
                raise
            except asyncio.TimeoutError:
                raise ManagerUnavailable(
                    f"The systemd user manager did not answer {member} within {self.call_timeout:g} s."
                ) from None
            except (OSError, EOFError, ConnectionError) as exc:
                self._bus = None
                raise ManagerUnavailable(f"The connection to the systemd user manager failed: {exc}.") from None
        if reply is None:
            raise ManagerUnavailable(f"No reply from the systemd user manager to {member}.")
        if reply.message_type is MessageType.ERROR:
            # the bus requires an error name on every error; dbus_fast types it optional
            raise DBusError(reply.error_name or ErrorType.FAILED, reply.body[0] if reply.body else "", reply)
        return reply.body

    async def call_manager(self, member: str, signature: str = "", body: Optional[list] = None) -> list:
        """Call a ``org.freedesktop.systemd1.Manager`` method; map errors to domain errors."""
        try:
            return await self._raw_call(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, member, signature, body or [])
        except DBusError as exc:
            raise _map_dbus_error(exc) from None

    async def ping(self) -> str:
        """The manager's systemd version; raises ManagerUnavailable if unreachable."""
        body = await self._get(MANAGER_PATH, MANAGER_IFACE, "Version")
        return str(body)

    async def manager_property(self, prop: str) -> Any:
        return await self._get(MANAGER_PATH, MANAGER_IFACE, prop)

    async def get_unit_property(self, unit: str, iface: str, prop: str) -> Any:
        """One property of one unit on one interface (e.g. a scope's MemoryCurrent), uncached."""
        return await self._get(unit_object_path(unit), iface, prop)

    async def _get(self, path: str, iface: str, prop: str) -> Any:
        try:
            body = await self._raw_call(SYSTEMD, path, PROPS_IFACE, "Get", "ss", [iface, prop])
        except DBusError as exc:
            raise _map_dbus_error(exc) from None
        return _plain(body[0])

    async def _get_all(self, path: str, iface: str) -> Properties:
        try:
            body = await self._raw_call(SYSTEMD, path, PROPS_IFACE, "GetAll", "s", [iface])
        except DBusError as exc:
            raise _map_dbus_error(exc) from None
        return {k: _plain(v) for k, v in body[0].items()}

    async def reload(self) -> None:
        """``daemon-reload``: re-read unit files; concurrent callers share one reload.

        A reload already in flight may have read the files before the caller
        wrote its own, so a caller waits for the next one to start; every
        caller arriving before that next reload is sent shares it.  On
        systemd 252 each reload also resets every unit's start-limit counter,
        so fewer reloads is what lets a crash loop stop at its limit.
        """
        fut = self._reload_next
        if fut is None:
            fut = self._reload_next = asyncio.get_running_loop().create_future()
            sender = asyncio.ensure_future(self._send_reload(fut, self._reload_running))
            self._reload_senders.add(sender)
            sender.add_done_callback(self._reload_senders.discard)
        await asyncio.shield(fut)

    async def _send_reload(self, fut: asyncio.Future, previous: Optional[asyncio.Future]) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if self._reload_next is fut:
            self._reload_next = None
        self._reload_running = fut
        try:
            self.reloads += 1
            await self.call_manager("Reload")
            self._mark_reloaded()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits any more
        else:
            fut.set_result(None)
        finally:
            if self._reload_running is fut:
                self._reload_running = None

    async def is_loaded(self, unit: str) -> bool:
        """Whether systemd holds ``unit`` in memory (``GetUnit``, which, unlike LoadUnit, loads nothing)."""
        try:
            await self._raw_call(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, "GetUnit", "s", [unit])
        except DBusError as exc:
            if exc.type == "org.freedesktop.systemd1.NoSuchUnit":
                return False
            raise _map_dbus_error(exc) from None
        return True

    async def reload_for(self, units: Sequence[str]) -> bool:
        """Make systemd see the unit files of ``units`` as just written; True if that took a reload.

        A unit systemd does not hold, or holds only as "not-found", is read
        from disk when next referenced (systemd >= 247 retries loading a
        not-found unit once the unit directories changed), so a brand-new
        unit needs no reload.  A unit loaded from an older (or now removed)
        file says so in ``NeedDaemonReload``, and only then do we reload.
        """
        for unit in units:
            if not await self.is_loaded(unit):
                continue
            if await self._get(unit_object_path(unit), UNIT_IFACE, "NeedDaemonReload"):
                await self.reload()
                return True
        for unit in units:
            self._mark_stale(unit)
        return False

    def _mark_stale(self, unit: str) -> None:
        cached = self._cache.get(unit)
        if cached is not None:
            cached.stale = True
        self._marks[unit] = self._marks.get(unit, 0) + 1

    def _mark_of(self, unit: str) -> Tuple[int, int]:
        return self._reload_mark, self._marks.get(unit, 0)

    def _mark_reloaded(self) -> None:
        # Runtime state (ActiveState, MainPID, NRestarts...) survives a reload and
        # keeps being signalled; only what comes from unit files must be re-read.
        self._file_state.clear()
        self._reload_mark += 1
        for cached in self._cache.values():
            cached.reloaded = True

    async def _run_job(self, member: str, unit: str, mode: str = "replace") -> str:
        await self.connect()
        body = await self.call_manager(member, "ss", [unit, mode])
        job = body[0]
        try:
            # The journal's "Starting ..." entry of the run carries this JOB_ID (run history tells manual runs by it).
            self.last_job[unit] = int(str(job).rsplit("/", 1)[-1])
        except ValueError:
            pass
        early = self._job_results.pop(job, None)
        if early is not None:
            result = early[1]
        else:
            fut = asyncio.get_running_loop().create_future()
            self._job_waiters[job] = fut
            try:
                result = await asyncio.wait_for(fut, self.job_timeout)
            except asyncio.TimeoutError:
                self._job_waiters.pop(job, None)
                raise JobFailed(f"{member} of {unit} did not finish within {self.job_timeout:g} s.") from None
        self._mark_stale(unit)
        return result

    async def start_unit(self, unit: str, mode: str = "replace") -> str:
        return await self._run_job("StartUnit", unit, mode)

    async def stop_unit(self, unit: str, mode: str = "replace") -> str:
        return await self._run_job("StopUnit", unit, mode)

    async def restart_unit(self, unit: str, mode: str = "replace") -> str:
        return await self._run_job("RestartUnit", unit, mode)

    async def reset_failed_unit(self, unit: str) -> None:
        await self.call_manager("ResetFailedUnit", "s", [unit])
        self._mark_stale(unit)

    async def enable_unit_files(self, files: Sequence[str]) -> None:
        await self.call_manager("EnableUnitFiles", "asbb", [list(files), False, True])
        await self._learn_file_states(files)

    async def disable_unit_files(self, files: Sequence[str]) -> None:
        await self.call_manager("DisableUnitFiles", "asb", [list(files), False])
        await self._learn_file_states(files)

    async def _learn_file_states(self, files: Sequence[str]) -> None:
        """Ask the disk's UnitFileState of each unit just (en|dis)abled and report it in place of the loaded one."""
        units = [os.path.basename(f) for f in files]
        states = await asyncio.gather(*(self.get_unit_file_state(u) for u in units))
        for unit, state in zip(units, states):
            self._file_state[unit] = state
            cached = self._cache.get(unit)
            if cached is not None and cached.props.get("UnitFileState") != state:
                # A new dict: its identity tells the view cache to rebuild (CachedUnit).
                cached.props = {**cached.props, "UnitFileState": state}
                self._emit(unit, "changed", {"UnitFileState": state})

    async def get_unit_file_state(self, unit: str) -> Optional[str]:
        try:
            body = await self._raw_call(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, "GetUnitFileState", "s", [unit])
        except DBusError as exc:
            if exc.type in ("org.freedesktop.DBus.Error.FileNotFound", "org.freedesktop.systemd1.NoSuchUnit"):
                return None
            raise _map_dbus_error(exc) from None
        return body[0]

    async def list_units_by_names(self, units: Sequence[str]) -> List[list]:
        body = await self.call_manager("ListUnitsByNames", "as", [list(units)])
        return body[0]

    async def get_unit_properties(self, unit: str, *, fresh: bool = False) -> Properties:
        """Unit properties plus those of its type (Service, Timer), from the signal-fed cache when possible."""
        await self.connect()
        cached = self._cache.get(unit)
        if cached is not None and not fresh and cached.current:
            return cached.props
        mark = self._mark_of(unit)
        inflight = self._inflight.get(unit)
        if inflight is not None and not fresh and inflight[0] == mark:
            return await asyncio.shield(inflight[1])
        fut = asyncio.ensure_future(self._fetch_properties(unit, mark))
        self._inflight[unit] = (mark, fut)
        try:
            return await asyncio.shield(fut)
        finally:
            if unit in self._inflight and self._inflight[unit][1] is fut:
                del self._inflight[unit]

    async def _fetch_properties(self, unit: str, mark: Tuple[int, int]) -> Properties:
        path = unit_object_path(unit)
        ifaces = [UNIT_IFACE]
        if unit.endswith(".service"):
            ifaces.append(SERVICE_IFACE)
        elif unit.endswith(".timer"):
            ifaces.append(TIMER_IFACE)
        elif unit.endswith(".path"):
            ifaces.append(PATH_IFACE)  # Result: why a watch failed
        # Changes signalled while the GetAll calls are in flight are replayed
        # over their answers, in order: a unit that changes during the fetch
        # (a service that crashes right after its start) is not cached stale.
        changes: List[Tuple[Properties, bool]] = []
        self._fetching.setdefault(unit, []).append(changes)
        try:
            parts = await asyncio.gather(*(self._get_all(path, iface) for iface in ifaces))
        finally:
            watchers = self._fetching.get(unit, [])
            watchers[:] = [w for w in watchers if w is not changes]
            if not watchers:
                self._fetching.pop(unit, None)
        props: Properties = {}
        for part in parts:
            props.update(part)
        entry = CachedUnit(props)
        for values, invalidated in changes:
            props.update(values)
            if invalidated:
                entry.stale = True
        if unit in self._file_state:
            props["UnitFileState"] = self._file_state[unit]
        if self._mark_of(unit) != mark:
            entry.stale = True  # marked stale (a job ended, a reload) while the answer was on its way
        self._cache[unit] = entry
        return props

    async def get_unsignalled(self, unit: str, since: Optional[int] = None) -> Properties:
        """MemoryCurrent and CPUUsageNSec (never signalled), at most ``unsignalled_max_age`` old.

        ``since`` is the unit's ActiveEnterTimestamp: when accounting is off
        for this run of the unit (both values "not set"), that answer holds
        until the unit starts again, so it is not asked again.
        """
        now = asyncio.get_running_loop().time()
        hit = self._unsignalled.get(unit)
        if hit is not None:
            values, at, run, unset = hit
            if (unset and since is not None and run == since) or now - at < self.unsignalled_max_age:
                return values
        path = unit_object_path(unit)
        got = await asyncio.gather(*(self._get(path, iface, prop) for prop, iface in UNSIGNALLED))
        values = {prop: value for (prop, _), value in zip(UNSIGNALLED, got)}
        unset = all(v is None or v == 2**64 - 1 for v in values.values())
        self._unsignalled[unit] = (values, now, since, unset)
        return values

    def cached_properties(self, unit: str) -> Optional[Properties]:
        """The signal-fed properties of ``unit`` if they are current (what get_unit_properties would return), else None.

        The same dict object stays in the cache while signals update it; a re-read replaces it, so the
        object's identity tells a view cache whether it was rebuilt (see views.ServiceViews).
        """
        cached = self._cache.get(unit)
        if cached is None or not cached.current:
            return None
        return cached.props

    def provisional_properties(self, unit: str) -> Optional[Properties]:
        """The cached properties of ``unit`` unless a daemon-reload happened since they were read; None if never read.

        Current, or due for a re-read after a job's end or an invalidation: then everything systemd signals
        (states, MainPID, results, restarts, exit status) is as the signals left it, and what no signal
        reports is as last read. The view cache serves these while it re-reads in the background.
        """
        cached = self._cache.get(unit)
        return None if cached is None or cached.reloaded else cached.props

    def signalled_properties(self, unit: str) -> Optional[Properties]:
        """The properties of ``unit`` as the signals left them, even when a re-read is due; None if never read.

        For an immediate state push (no I/O): ActiveState, SubState, Result, MainPID... are signalled as they
        change, so they are right even when something else about the unit must be re-read.
        """
        cached = self._cache.get(unit)
        return None if cached is None else cached.props

    def peek_unsignalled(self, unit: str, since: Optional[int] = None) -> Optional[Properties]:
        """What get_unsignalled would answer without a call, or None when it would ask the manager."""
        hit = self._unsignalled.get(unit)
        if hit is None:
            return None
        values, at, run, unset = hit
        if (
            unset and since is not None and run == since
        ) or asyncio.get_running_loop().time() - at < self.unsignalled_max_age:
            return values
        return None

    async def get_properties_many(self, units: Iterable[str]) -> Dict[str, Properties]:
        """Properties of many units; after a daemon-reload, two calls re-check them all."""
        names = list(units)
        reloaded = [u for u in names if (c := self._cache.get(u)) is not None and c.reloaded and not c.stale]
        if reloaded:
            await self._refresh_after_reload(reloaded)
        results = await asyncio.gather(*(self.get_unit_properties(u) for u in names))
        return dict(zip(names, results))

    async def _refresh_after_reload(self, units: List[str]) -> None:
        """Re-read what a reload can change for many units in two calls.

        ListUnitsByNames gives load/active/sub state, ListUnitFilesByPatterns
        the enablement; a unit whose load state changed (a file edited into
        something invalid, removed...) is re-read in full instead.
        """
        listed, files = await asyncio.gather(
            self.call_manager("ListUnitsByNames", "as", [units]),
            self.call_manager("ListUnitFilesByPatterns", "asas", [[], units]),
        )
        file_state = {os.path.basename(path): state for path, state in files[0]}
        for row in listed[0]:
            name, _desc, load_state, active_state, sub_state = row[:5]
            cached = self._cache.get(name)
            if cached is None:
                continue
            props = cached.props
            if load_state != props.get("LoadState") or load_state != "loaded":
                cached.stale = True
                self._marks[name] = self._marks.get(name, 0) + 1
                continue
            props.update(
                ActiveState=active_state,
                SubState=sub_state,
                UnitFileState=file_state.get(name, props.get("UnitFileState")),
            )
            cached.reloaded = False


def _map_dbus_error(exc: DBusError) -> CondaSvcError:
    name = exc.type or ""
    text = exc.text or name
    if name in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed"):
        return NotFound(text)
    if name in (
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected",
    ):
        return ManagerUnavailable(f"The systemd user manager is not reachable: {text}")
    return JobFailed(f"systemd refused: {text}")
