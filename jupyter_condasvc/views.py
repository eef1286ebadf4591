"""JSON views kept between the signals that change them: the service list and the host report.

A service's view (``ServiceManager.describe``) depends on its record (the
store re-reads a record only when its file or unit file changed, so the
record object's identity says "unchanged"), the unit's and its timer's
properties (the systemd client's signal-fed cache: a ``PropertiesChanged``,
a reload, a job's end or a re-read replaces or updates them), its
memory/CPU reading (never signalled; reused for ``unsignalled_max_age``) and
its health file (records, unit files and health files are looked at again
only after inotify saw their directories change: see dirwatch). Each piece
of JSON text is kept with what it was built from and rebuilt only when one
of those changed. No request waits on the manager for what only a re-read
can tell: after a job's end or an invalidation (a property systemd does not
send with its signal) a piece is built from the properties as the signals
left them (states, MainPID, result, restarts and exit status are signalled
as they change), and a memory/CPU reading that is due keeps its old value;
one background task re-reads what is due and rebuilds those pieces, so the
next request has them. A daemon-reload, a unit never read and a record or
health-file change are still read before answering. The list is the
concatenation of the pieces, and its ETag changes exactly when a piece or
the set of services does, so an unchanged list answers 304.

The host report has no change signal for most of its parts (journal files,
the linger file, delegated controllers): it is recomputed at most every
``max_age`` seconds, by one computation that concurrent requests share
(until it is twice that old, requests get the last report meanwhile), and
at once when the connection to the manager is lost or linger changed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from .dirwatch import DirWatch
from .store import ServiceRecord, StatKey, stat_key

if TYPE_CHECKING:
    from .services import ServiceManager
    from .systemd import Properties, SystemdManager


class _Piece:
    __slots__ = ("epoch", "health_key", "live", "props", "record", "serial", "text", "timer_props")

    def __init__(
        self,
        serial: int,
        text: str,
        record: ServiceRecord,
        props: Properties,
        timer_props: Optional[Properties],
        live: Optional[Properties],
        health_key: StatKey,
        epoch: Tuple[int, int],
    ) -> None:
        self.serial, self.text, self.record, self.props = serial, text, record, props
        self.timer_props, self.live, self.health_key, self.epoch = timer_props, live, health_key, epoch


def _active(props: Properties) -> bool:
    return props.get("ActiveState") in ("active", "reloading", "deactivating", "activating")


class ServiceViews:
    """Each service's JSON between the signals that change it; the list as their concatenation with an ETag."""

    def __init__(self, services: ServiceManager) -> None:
        self.services = services
        self.systemd = services.systemd
        self.store = services.store
        self._pieces: Dict[str, _Piece] = {}
        self._owner: Dict[str, str] = {}  # unit or timer name -> service name
        self._epoch: Dict[str, int] = {}  # bumped by every signal about a service's units
        self._all_epoch = 0  # bumped by reloads and disconnects
        self._serial = 0
        self._building: Dict[str, asyncio.Future] = {}
        self._units: Dict[str, Tuple[int, str]] = {}  # name -> (watch generation, GET unit's JSON)
        self._due: Set[str] = set()  # services whose piece shows a memory/CPU reading that is due
        self._refresher: Optional[asyncio.Future] = None
        self._list: Optional[Tuple[Tuple[int, ...], str, str]] = None  # (piece serials, body, etag)
        self._list_version = 0
        self._tag = secrets.token_hex(4)  # a restarted server never matches an old ETag
        #: pieces built since start (the cache tests and the bench read it)
        self.builds = 0
        self.systemd.add_listener(self._on_event)
        # records, unit files and health files are re-checked only after one of their directories changed
        self._watch = DirWatch([str(self.store.records_dir), str(self.store.state_dir), str(self.store.unit_dir)])
        # (generation, records, health)
        self._loaded: Optional[Tuple[int, Dict[str, ServiceRecord], Dict[str, StatKey]]] = None

    # -- invalidation ---------------------------------------------------
    def _on_event(self, unit: str, event: str, data: Dict[str, Any]) -> None:
        if event in ("reloaded", "disconnected"):
            self._all_epoch += 1
            self._pieces.clear()
            return
        name = self._owner.get(unit)
        if name is not None and event in ("changed", "job-removed"):
            self._epoch[name] = self._epoch.get(name, 0) + 1
            self._pieces.pop(name, None)

    def close(self) -> None:
        """Stop listening and release the inotify instance (a user has only 128 of them)."""
        self.systemd.remove_listener(self._on_event)
        self._watch.close()
        if self._refresher is not None:
            self._refresher.cancel()

    def invalidate(self, name: Optional[str] = None) -> None:
        """Forget one service's view (or all): for changes no signal or file stat reveals."""
        if name is None:
            self._on_event("", "reloaded", {})
        else:
            self._epoch[name] = self._epoch.get(name, 0) + 1
            self._pieces.pop(name, None)

    def _current(self, piece: _Piece, name: str, record: ServiceRecord, health_key: StatKey) -> bool:
        """Whether ``piece`` may be served: built from these inputs (a due memory/CPU reading is refreshed
        in the background, see ``_refresh_later``)."""
        if piece.record is not record or piece.health_key != health_key:
            return False
        props = self.systemd.provisional_properties(record.unit)
        if props is None or props is not piece.props:
            return False
        if self.systemd.cached_properties(record.unit) is None:
            self._refresh_later(name)  # a job ended or a property was invalidated: re-read in the background
        if (
            piece.timer_props is not None
            and self.systemd.cached_properties(self.store.timer_name(name)) is not piece.timer_props
        ):
            return False
        if _active(props):
            live = self.systemd.peek_unsignalled(record.unit, props.get("ActiveEnterTimestamp"))
            if live is None or live is not piece.live:
                self._refresh_later(name)  # its memory/CPU reading is due (or newer): re-read in the background
        return True

    # -- memory/CPU readings (never signalled), refreshed off the request path --
    def _refresh_later(self, name: str) -> None:
        self._due.add(name)
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        """Re-read what is due (a unit's properties after a job's end or an invalidation, a memory/CPU
        reading) and rebuild those pieces; one task at a time. Names that become due meanwhile wait for
        the next request that serves their piece (nothing runs while nobody asks)."""
        names, self._due = self._due, set()
        loaded = self._loaded
        due = []
        for name in names:
            piece = self._pieces.get(name)
            record = loaded[1].get(name) if loaded is not None else None
            if piece is None or record is None or piece.record is not record:
                continue  # dropped or changed since: the next request builds it
            due.append((name, record, piece.health_key))
        # a failure leaves the old piece in place; the next request that serves it asks again
        got = await asyncio.gather(*(self._reread(record.unit) for _, record, _ in due), return_exceptions=True)
        await asyncio.gather(
            *(
                self._build_shared(name, record, props, health_key)
                for (name, record, health_key), props in zip(due, got)
                if not isinstance(props, BaseException)
            ),
            return_exceptions=True,
        )

    # -- building -------------------------------------------------------
    async def _records(self) -> Tuple[Dict[str, ServiceRecord], Dict[str, StatKey]]:
        """Records and health-file keys; from the last load while no watched directory changed."""
        generation = self._watch.poll()
        loaded = self._loaded
        if loaded is not None and loaded[0] == generation:
            return loaded[1], loaded[2]
        records, health = await asyncio.to_thread(self._load)
        self._loaded = (generation, records, health)  # a change during the load bumps the generation again
        return records, health

    def _load(self) -> Tuple[Dict[str, ServiceRecord], Dict[str, StatKey]]:
        """Records (stat-checked) and the stat keys of the health files they show, in one thread hop."""
        records = self.store.load_all()
        health = {n: stat_key(self.store.health_path(n)) for n, r in records.items() if r.spec.get("health_check")}
        return records, health

    async def _reread(self, unit: str) -> Properties:
        """The unit's properties (read again if due) and, while it runs, its memory/CPU reading (likewise)."""
        props = await self.systemd.get_unit_properties(unit)
        if _active(props):
            await self.systemd.get_unsignalled(unit, props.get("ActiveEnterTimestamp"))
        return props

    async def _build(self, name: str, record: ServiceRecord, props: Properties, health_key: StatKey) -> _Piece:
        unit = record.unit
        self._owner[unit] = name  # from now on its signals drop this piece
        if record.spec.get("schedule"):
            self._owner[self.store.timer_name(name)] = name
        if record.spec.get("restart_on_change"):
            self._owner[self.store.watch_names(name)[0]] = name  # a failed watch is a warning in the view
        epoch = (self._all_epoch, self._epoch.get(name, 0))
        view = await self.services.describe(name, record, props=props, wait_reading=False)
        timer_props = None
        if record.spec.get("schedule"):
            timer_props = self.systemd.cached_properties(self.store.timer_name(name))
        live = self.systemd.peek_unsignalled(unit, props.get("ActiveEnterTimestamp")) if _active(props) else None
        self._serial += 1
        self.builds += 1
        piece = _Piece(self._serial, json.dumps(view), record, props, timer_props, live, health_key, epoch)
        if epoch == (self._all_epoch, self._epoch.get(name, 0)) and self.systemd.provisional_properties(unit) is props:
            self._pieces[name] = piece  # nothing was signalled while it was built
            if self.systemd.cached_properties(unit) is None or (_active(props) and live is None):
                self._refresh_later(name)
        return piece

    async def _build_now(self, name: str, record: ServiceRecord, props: Properties, health_key: StatKey) -> _Piece:
        """The piece built in this task (no hop through the event loop's queue: a build with the properties
        at hand seldom waits on anything), or the one a build already under way gives."""
        fut = self._building.get(name)
        if fut is not None:
            return await asyncio.shield(fut)
        return await self._build(name, record, props, health_key)

    async def _build_shared(self, name: str, record: ServiceRecord, props: Properties, health_key: StatKey) -> _Piece:
        fut = self._building.get(name)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.ensure_future(self._build(name, record, props, health_key))
        self._building[name] = fut
        try:
            return await asyncio.shield(fut)
        finally:
            if self._building.get(name) is fut:
                del self._building[name]

    async def list_json(self) -> Tuple[str, str]:
        """``{"services": [...]}`` as text, and its ETag."""
        await self.systemd.connect()  # an unreachable manager is a 503 even with no services
        records, health = await self._records()
        pieces: Dict[str, _Piece] = {}
        stale: List[str] = []
        for name, record in records.items():
            piece = self._pieces.get(name)
            if piece is not None and self._current(piece, name, record, health.get(name)):
                pieces[name] = piece
            else:
                stale.append(name)
        for name in set(self._pieces) - set(records):
            del self._pieces[name]
        if len(self._owner) > 2 * len(records) + 64:  # forget units of deleted services now and then
            self._owner = {u: n for u, n in self._owner.items() if n in records}
        if stale:
            # what the signals say where a re-read is due (it then happens in the background); else a read
            props = {records[n].unit: p for n in stale if (p := self.systemd.provisional_properties(records[n].unit))}
            missing = [records[n].unit for n in stale if records[n].unit not in props]
            if missing:
                props.update(await self.systemd.get_properties_many(missing))
            for n in stale:
                pieces[n] = await self._build_now(n, records[n], props[records[n].unit], health.get(n))
        ordered = [pieces[n] for n in records if n in pieces]
        key = tuple(p.serial for p in ordered)
        cached = self._list
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        self._list_version += 1
        body = '{"services": [' + ", ".join(p.text for p in ordered) + "]}"
        etag = f'"{self._tag}-{self._list_version}"'
        self._list = (key, body, etag)
        return body, etag

    async def get_json(self, name: str) -> str:
        """One service's view as JSON text (what GET services/{name} answers)."""
        loaded = self._loaded
        if loaded is not None and loaded[0] == self._watch.poll() and name in loaded[1]:
            record, health_key = loaded[1][name], loaded[2].get(name)
        else:  # not listed since the last change: read it (and say why not, if it is not ours)
            record, health_key = await asyncio.to_thread(self._load_one, name)
        piece = self._pieces.get(name)
        if piece is not None and self._current(piece, name, record, health_key):
            return piece.text
        props = self.systemd.provisional_properties(record.unit)
        if props is None:
            props = await self.systemd.get_unit_properties(record.unit)
        return (await self._build_now(name, record, props, health_key)).text

    async def unit_json(self, name: str) -> str:
        """``GET services/{name}/unit`` as JSON text; kept while no watched directory changed."""
        generation = self._watch.poll()
        hit = self._units.get(name)
        if hit is not None and hit[0] == generation:
            return hit[1]
        text = json.dumps(await self.services.unit_text(name))  # read after the poll: a later change bumps it
        if len(self._units) > 4096:
            self._units.clear()
        self._units[name] = (generation, text)
        return text

    def _load_one(self, name: str) -> Tuple[ServiceRecord, StatKey]:
        record = self.store.load_one(name)
        return record, (stat_key(self.store.health_path(name)) if record.spec.get("health_check") else None)


class HostReportCache:
    """The host report, recomputed at most every ``max_age`` seconds by one shared computation."""

    def __init__(self, systemd: SystemdManager, max_age: float) -> None:
        from .host import LINGER_DIR

        self.systemd = systemd
        self.max_age = max_age
        self._value: Optional[Tuple[float, str]] = None
        # Linger changes (ours, `loginctl`, the CLI in another process) show at once: its folder is watched
        # (its parent while it does not exist yet).
        self._linger = DirWatch([str(LINGER_DIR if LINGER_DIR.is_dir() else LINGER_DIR.parent)])
        self._linger_generation = self._linger.poll()
        self._computing: Optional[asyncio.Future] = None
        #: reports computed since start (the bench reads it)
        self.computed = 0
        systemd.add_listener(self._on_event)

    def _on_event(self, unit: str, event: str, data: Dict[str, Any]) -> None:
        if event == "disconnected":
            self._value = None

    def invalidate(self) -> None:
        """Forget the report: something it shows changed through us (linger), not through a signal."""
        self._value = None

    def close(self) -> None:
        self.systemd.remove_listener(self._on_event)
        self._linger.close()

    async def _compute(self) -> str:
        from .host import host_report

        report = await host_report(self.systemd)
        self.computed += 1
        text = json.dumps(report)
        if report["manager"].get("reachable") and self.max_age > 0:
            self._value = (asyncio.get_running_loop().time(), text)
        return text

    async def get_json(self) -> str:
        generation = self._linger.poll()
        if generation != self._linger_generation:
            self._linger_generation = generation
            self._value = None
        hit = self._value
        age = None if hit is None else asyncio.get_running_loop().time() - hit[0]
        if hit is not None and age is not None and age < self.max_age:
            return hit[1]
        if self._computing is None or self._computing.done():
            self._computing = asyncio.ensure_future(self._compute())
            self._computing.add_done_callback(_retrieved)
        if hit is not None and age is not None and age < 2 * self.max_age:
            return hit[1]  # due, but not long overdue: the last report while the next one is computed
        return await asyncio.shield(self._computing)


def _retrieved(fut: asyncio.Future) -> None:
    """A computation nobody waited for may fail (the manager went away): the next request computes again."""
    if not fut.cancelled():
        fut.exception()


def etag_matches(if_none_match: Optional[str], etag: str) -> bool:
    """Does an If-None-Match header name ``etag`` (weak comparison, as RFC 9110 asks for GET)?"""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag[2:] if etag.startswith("W/") else etag
    return any((t.strip()[2:] if t.strip().startswith("W/") else t.strip()) == bare for t in if_none_match.split(","))
