"""The status stream: every managed service's state, pushed as it changes.

One :class:`StatusHub` per server fans out to every connected client (the
``condasvc/api/events`` WebSocket).  It is fed by the systemd client's
listeners (``PropertiesChanged``, ``UnitNew``, ``UnitRemoved``,
``JobRemoved``, reloads, disconnects) and knows nothing of HTTP.

* On connect a client gets a snapshot of all services (``ServiceManager.list``).
* Changes to units we own are coalesced per service (signals read together,
  in one loop iteration, by default; or within ``coalesce`` seconds) and pushed as the
  full service object, the same JSON as ``GET services/{name}``.
* Creates, edits and deletes made through the API are seen without any hook
  into the service layer: every one of them ends in a ``daemon-reload``, after
  which the hub re-reads the list of services and pushes what appeared,
  changed or vanished.
* Memory and CPU, which systemd never signals, are sampled every
  ``sample_interval`` seconds, and only while at least one client is connected.
  With nobody connected the hub has no listener and no timer.
* When the D-Bus connection drops, clients are told, and the hub reconnects
  (with back-off) while clients remain, then sends a fresh snapshot.

Messages (JSON, server to client)::

    {"type": "snapshot", "services": [<service>...]}
    {"type": "status", "name": "<name>", "status": <status>}  # a state change, at once, from systemd's signal
    {"type": "service", "service": <service>}       # created or changed: the full object (follows every "status")
    {"type": "removed", "name": "<name>"}
    {"type": "metrics", "services": {"<name>": {"memory_current": int|null, "cpu_usage_nsec": int|null}}}
    {"type": "manager", "reachable": false, "message": "..."}   # then a new snapshot once reconnected

On the socket these come through :class:`~jupyter_condasvc.fleet.FleetEvents`, which adds ``"host"`` to each
(``"local"`` here; every service object has it too), completes each snapshot with every other host's services and
a ``"hosts"`` list, and adds the other hosts' own messages plus ``{"type": "host", "host": {name, state, error}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set

from .errors import CondaSvcError, NotFound, NotOwned
from .serviceview import RUNNING_STATES, ServiceStatus, ServiceView
from .store import ServiceRecord
from .timestamps import u64_or_none

if TYPE_CHECKING:
    from .services import ServiceManager
    from .systemd import SystemdManager

#: Writes one message to a client; a WebSocket's write_message returns a future that is done once it is flushed.
Sender = Callable[[str], "Optional[asyncio.Future[None]]"]


class StatusClient:
    """One connected client: a ``send(text)`` callable and a bound on unflushed bytes."""

    def __init__(self, send: Sender, max_pending: int) -> None:
        self.send = send
        self.max_pending = max_pending
        self.pending_bytes = 0
        self.ready = False
        self.early: List[str] = []
        self.lagging: Dict[str, str] = {}  # name -> newest message, while the client cannot keep up
        self.closed = False

    def write(self, text: str, key: Optional[str] = None) -> None:
        if self.closed:
            return
        if not self.ready:
            self.early.append(text)
            return
        if self.pending_bytes > self.max_pending and key is not None:
            self.lagging[key] = text  # keep only the newest state per service
            return
        self._send(text)

    def _send(self, text: str) -> None:
        try:
            fut = self.send(text)
        except Exception:  # noqa: BLE001 - closed: on_close removes the client
            self.closed = True
            return
        if fut is not None and not fut.done():
            size = len(text)
            self.pending_bytes += size

            def done(f: asyncio.Future[None]) -> None:
                self.pending_bytes -= size
                try:
                    f.exception()
                except BaseException:  # noqa: BLE001
                    pass
                if self.lagging and self.pending_bytes <= self.max_pending // 2:
                    pending, self.lagging = self.lagging, {}
                    for t in pending.values():
                        self._send(t)

            fut.add_done_callback(done)

    def start(self, snapshot: str) -> None:
        self._send(snapshot)
        self.ready = True
        early, self.early = self.early, []
        for text in early:
            self._send(text)


class StatusHub:
    def __init__(
        self,
        services: ServiceManager,
        systemd: SystemdManager,
        *,
        coalesce: float = 0.0,
        sample_interval: float = 2.0,
        max_pending: int = 1024 * 1024,
        reconnect_max: float = 10.0,
        log: Optional[logging.Logger] = None,
    ) -> None:
        self.services = services
        self.systemd = systemd
        self.coalesce = coalesce
        self.sample_interval = sample_interval
        self.max_pending = max_pending
        self.reconnect_max = reconnect_max
        self.log = log
        self.clients: List[StatusClient] = []
        self._units: Dict[str, str] = {}  # unit -> service name (ours)
        self._dirty: Set[str] = set()
        self._rescan = False
        self._flush_handle: Optional[asyncio.TimerHandle] = None
        self._flushing: Optional[asyncio.Task] = None
        self._sample_handle: Optional[asyncio.TimerHandle] = None
        self._sample_task: Optional[asyncio.Task] = None
        self._reconnect_task: Optional[asyncio.Task] = None
        self._seeding: Set[asyncio.Future] = set()  # seeds in flight, referenced until done (the loop keeps none)
        self._metrics: Dict[str, Dict[str, Optional[int]]] = {}
        self._quick: Set[str] = set()
        self._quick_handle: Optional[asyncio.Handle] = None
        self._listening = False
        self.pushes = 0
        self.quick_misses = 0  # changes pushed only in full (no seeded properties yet)

    @property
    def timers_running(self) -> int:
        """Timers alive now (0 with nobody connected)."""
        return sum(h is not None for h in (self._flush_handle, self._sample_handle)) + (
            self._reconnect_task is not None and not self._reconnect_task.done()
        )

    # -- clients --
    async def connect(self, send: Sender) -> StatusClient:
        client = StatusClient(send, self.max_pending)
        self.clients.append(client)
        if not self._listening:
            self.systemd.add_listener(self._on_event)
            self._listening = True
        try:
            services = await self.services.list()
        except CondaSvcError as exc:
            client.start(json.dumps({"type": "manager", "reachable": False, "message": exc.message}))
            self._start_reconnect()
            return client
        self._learn(services)
        client.start(json.dumps({"type": "snapshot", "services": services}))
        # listing read every record and unit: the quick pushes find them in the store's and systemd client's caches
        self._arm_sampler()
        return client

    def disconnect(self, client: StatusClient) -> None:
        client.closed = True
        if client in self.clients:
            self.clients.remove(client)
        if not self.clients:
            self._idle()

    def close(self) -> None:
        for c in list(self.clients):
            self.disconnect(c)
        self._idle()

    def _idle(self) -> None:
        if self._listening:
            self.systemd.remove_listener(self._on_event)
            self._listening = False
        for handle in (self._flush_handle, self._sample_handle, self._quick_handle):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._sample_handle = self._quick_handle = None
        self._quick.clear()
        for task in (self._reconnect_task, self._sample_task):
            if task is not None and not task.done():
                task.cancel()
        self._reconnect_task = self._sample_task = None
        self._dirty.clear()
        self._metrics.clear()

    def _broadcast(self, message: Dict[str, Any], key: Optional[str] = None) -> None:
        text = json.dumps(message)
        self.pushes += 1
        for client in list(self.clients):
            client.write(text, key)

    def _learn(self, services: List[ServiceView]) -> None:
        self._units = {s["unit"]: s["name"] for s in services}

    # -- systemd events --
    def _on_event(self, unit: str, event: str, data: Dict[str, Any]) -> None:
        if event == "disconnected":
            self._broadcast(
                {
                    "type": "manager",
                    "reachable": False,
                    "message": "The connection to the systemd user manager was lost; reconnecting.",
                }
            )
            self._start_reconnect()
            return
        if event in ("reloaded", "records-changed"):
            # a reload, or our own create/edit/enable/delete (which no longer always reloads): specs changed
            self._rescan = True
        elif unit in self._units:
            name = self._units[unit]
            self._dirty.add(name)
            if event == "changed":
                self._quick.add(name)
                if self._quick_handle is None:
                    self._quick_handle = asyncio.get_running_loop().call_soon(self._quick_flush)
        elif event in ("new", "removed") and self.services.could_be_ours(unit):
            self._rescan = True
        else:
            return
        self._arm_flush()

    def _arm_flush(self) -> None:
        if self._flush_handle is None and (self._flushing is None or self._flushing.done()):
            loop = asyncio.get_running_loop()
            if self.coalesce > 0:
                self._flush_handle = loop.call_later(self.coalesce, self._start_flush)
            else:  # the next loop iteration: signals read together are pushed together
                self._flush_handle = loop.call_soon(self._start_flush)  # type: ignore[assignment]

    def _start_flush(self) -> None:
        self._flush_handle = None
        self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            while (self._dirty or self._rescan) and self.clients:
                if self._rescan:
                    self._rescan = False
                    await self._do_rescan()
                dirty, self._dirty = self._dirty, set()
                results = await asyncio.gather(*(self._one(name) for name in sorted(dirty)), return_exceptions=True)
                for name, result in zip(sorted(dirty), results):
                    if isinstance(result, (NotFound, NotOwned)):
                        self._forget(name)
                    elif isinstance(result, BaseException):
                        if self.log is not None:
                            self.log.warning("condasvc: status of %s not pushed: %s", name, result)
                    elif result is not None:
                        self._broadcast({"type": "service", "service": result}, key=name)
        except Exception:
            if self.log is not None:
                self.log.exception("condasvc: status push failed")
        finally:
            self._flushing = None
        if (self._dirty or self._rescan) and self.clients:
            self._arm_flush()

    def _quick_flush(self) -> None:
        """Push the new state of every changed service at once, from the systemd client's properties, which the
        signals themselves keep current (no I/O, no waiting for the full pushes, which need round trips)."""
        self._quick_handle = None
        names, self._quick = self._quick, set()
        for name in sorted(names):
            status = self._quick_status(name)
            if status is not None:
                self._broadcast({"type": "status", "name": name, "status": status}, key="\0status:" + name)

    def _quick_status(self, name: str) -> Optional[ServiceStatus]:
        try:
            status = self.services.signalled_status(name)
        except Exception:
            if self.log is not None:
                self.log.debug("condasvc: no quick status for %s", name, exc_info=True)
            return None
        if status is None:  # record or properties not read yet: the full push follows; read them for the next change
            self.quick_misses += 1
            seed = asyncio.ensure_future(self._seed())
            self._seeding.add(seed)
            seed.add_done_callback(self._seeding.discard)
            return None
        metrics = self._metrics.get(name)
        if metrics and status.get("active_state") in RUNNING_STATES:
            status.update(metrics)  # type: ignore[typeddict-item]
        return status

    async def _one(self, name: str) -> Optional[ServiceView]:
        # the record as last read (re-read at every reload or records change), the properties from the signal-fed cache
        service = await self.services.describe(name, self.services.known_record(name))
        metrics = self._metrics.get(name)
        if metrics and service["status"].get("memory_current") is None:
            service["status"].update(metrics)  # type: ignore[typeddict-item]
        return service

    async def _seed(self) -> Dict[str, ServiceRecord]:
        """Read every record we own and its unit's properties into the caches that quick pushes use."""
        records = await self.services.records()
        try:
            await self.systemd.get_properties_many([r.unit for r in records.values()])
        except CondaSvcError:
            pass
        return records

    async def _do_rescan(self) -> None:
        records = await self._seed()
        known = set(self._units.values())
        for name in known - set(records):
            self._forget(name)
        for name, record in records.items():
            # new services, and every known one (an edit or enable changes the spec, not a property)
            self._dirty.add(name)
            self._units[record.unit] = name

    def _forget(self, name: str) -> None:
        for unit, n in list(self._units.items()):
            if n == name:
                del self._units[unit]
        self._metrics.pop(name, None)
        self._broadcast({"type": "removed", "name": name}, key=name)

    # -- reconnecting --
    def _start_reconnect(self) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.25
        while self.clients:
            try:
                await self.systemd.connect()
                services = await self.services.list()
            except CondaSvcError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)
                continue
            self._learn(services)
            self._broadcast({"type": "snapshot", "services": services})
            return

    # -- sampling memory / CPU (never signalled) --
    def _arm_sampler(self) -> None:
        if self._sample_handle is None and self.clients and self.sample_interval > 0:
            self._sample_handle = asyncio.get_running_loop().call_later(self.sample_interval, self._sample)

    def _sample(self) -> None:
        self._sample_handle = None
        if not self.clients:
            return
        if self._sample_task is None or self._sample_task.done():
            self._sample_task = asyncio.ensure_future(self._sample_once())
        self._arm_sampler()

    async def _sample_once(self) -> None:
        units = list(self._units.items())
        if not units:
            return
        try:
            props = await self.systemd.get_properties_many([u for u, _ in units])
        except CondaSvcError:
            return
        active = [(u, n) for u, n in units if props.get(u, {}).get("ActiveState") in RUNNING_STATES]
        results = await asyncio.gather(*(self.systemd.get_unsignalled(u) for u, _ in active), return_exceptions=True)
        changed: Dict[str, Dict[str, Optional[int]]] = {}
        now_active = set()
        for (_, name), live in zip(active, results):
            if isinstance(live, BaseException):
                continue
            now_active.add(name)
            value = {
                "memory_current": u64_or_none(live.get("MemoryCurrent")),
                "cpu_usage_nsec": u64_or_none(live.get("CPUUsageNSec")),
            }
            if self._metrics.get(name) != value:
                changed[name] = value
                self._metrics[name] = value
        for name in list(self._metrics):
            if name not in now_active:
                del self._metrics[name]
                changed[name] = {"memory_current": None, "cpu_usage_nsec": None}
        if changed:
            self._broadcast({"type": "metrics", "services": changed}, key="\0metrics")
