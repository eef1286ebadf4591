"""Every host this server manages, in one place: the ``host`` of a request, the combined list and status stream.

A request names its host with ``?host=`` (default ``local``); :meth:`Fleet.target` checks the name (one
function: 400 naming the configured hosts) and answers the object the handler calls: :class:`LocalTarget`
over this server's service layer, or :class:`RemoteTarget` over the host's :class:`~.remote.RemoteHost`
(its bridge). Both have the same async methods, so handlers stay one line whatever the host.

The combined list (``GET services``, no host or ``host=all``) is local services plus each remote host's
last known ones from its :class:`FleetMirror` (a :class:`~.remote.HostMirror` kept by the host's pushed
status), so a remote host never delays it: a mirror not connected yet answers no services and
``state: "connecting"``; a host that is down keeps its services listed, marked ``stale`` with the reason.
Mirrors start lazily (the first list, status socket or request naming the host) and live until the
server stops. :class:`FleetEvents` merges every mirror's messages (with ``host``) into the status socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from .errors import CondaSvcError, InvalidSpec, ManagerUnavailable
from .hostops import LocalHost
from .remote import HostMirror, RemoteHost

if TYPE_CHECKING:
    from .remote import RemoteHosts
    from .services import ServiceManager
    from .status import StatusClient, StatusHub
    from .views import ServiceViews

LOCAL = "local"
ALL = "all"
#: The query arguments of a log page, handed to the remote host as they came.
LOG_ARGS = ("n", "lines", "before", "after", "priority", "since", "until", "boot", "text", "regex")


@dataclass
class LogPageJSON:
    """A log page as a remote host answered it (``LogPage``'s JSON), with what ``format=text`` needs."""

    data: Dict[str, Any]

    @property
    def entries(self) -> List[Dict[str, Any]]:
        return list(self.data.get("entries") or [])

    def to_json(self) -> str:
        return json.dumps(self.data)

    def to_json_bytes(self) -> bytes:
        """As :meth:`~.journal.history.LogPage.to_json_bytes`: the body the logs handler sends."""
        return self.to_json().encode("utf-8")


class LocalTarget(LocalHost):
    """This server's service layer under the method names every target has (see :class:`RemoteTarget`); the
    reads every host gives (run history, environments, preview, a service's environment) are
    :class:`~.hostops.LocalHost`'s, the functions the bridge answers them with on a remote host."""

    name = LOCAL

    def __init__(self, services: ServiceManager, views: ServiceViews, finder: Any) -> None:
        super().__init__(services)
        self.views, self.finder = views, finder

    async def create(self, spec: Any) -> Any:
        return await self.services.create(spec)

    async def update(self, name: str, patch: Any) -> Any:
        return await self.services.update(name, patch)

    async def delete(self, name: str) -> None:
        await self.services.delete(name)

    async def act(self, name: str, action: str) -> Any:
        return await self.services.act(name, action)

    async def unit_text(self, name: str) -> Any:
        return await self.services.unit_text(name)

    async def unit_json(self, name: str) -> str:
        """``GET services/{name}/unit``'s body, kept until a watched folder changes (views.ServiceViews)."""
        return await self.views.unit_json(name)

    async def get_json(self, name: str) -> str:
        return await self.views.get_json(name)

    async def logs(self, name: str, get: Callable[[str], Optional[str]], *, max_n: int, max_scan: int) -> Any:
        from .journal.query import LogQuery

        return await self.services.logs(name, LogQuery.parse(get, max_n=max_n, default_n=100), max_scan=max_scan)


class RemoteTarget:
    """One remote host through its bridge: the same methods as :class:`LocalTarget`, each one bridge call (the
    ops of ``python -m jupyter_condasvc.bridge``). Service objects come back with ``host`` set to the host."""

    def __init__(self, host: RemoteHost) -> None:
        self.host = host
        self.name = host.name

    def _mine(self, service: Any) -> Any:
        return {**service, "host": self.name} if isinstance(service, dict) else service

    async def create(self, spec: Any) -> Any:
        return self._mine(await self.host.call("create", spec=spec))

    async def update(self, name: str, patch: Any) -> Any:
        return self._mine(await self.host.call("update", name=name, patch=patch))

    async def delete(self, name: str) -> None:
        await self.host.call("delete", name=name)

    async def act(self, name: str, action: str) -> Any:
        return self._mine(await self.host.call("act", name=name, action=action))

    async def unit_text(self, name: str) -> Any:
        return await self.host.call("unit_text", name=name)

    async def unit_json(self, name: str) -> str:
        return json.dumps(await self.unit_text(name))

    async def preview(self, spec: Any) -> Any:
        return await self.host.preview(spec)

    async def get(self, name: str) -> Any:
        return self._mine(await self.host.call("get", name=name))

    async def get_json(self, name: str) -> str:
        return json.dumps(await self.get(name))

    async def logs(self, name: str, get: Callable[[str], Optional[str]], *, max_n: int, max_scan: int) -> Any:
        from .journal.query import LogQuery

        LogQuery.parse(get, max_n=max_n, default_n=100)  # the same 400s as locally, before a round trip
        query = {k: get(k) for k in LOG_ARGS if get(k) is not None}
        return LogPageJSON(await self.host.call("logs", name=name, query=query))

    async def runs(self, name: str, limit: int) -> Any:
        return await self.host.runs(name, limit=limit)

    async def run(self, name: str, run_id: str) -> Any:
        return await self.host.run(name, run_id)

    async def run_logs(self, name: str, run_id: str, n: int) -> Any:
        return await self.host.run_logs(name, run_id, n=n)

    async def run_notebook(self, name: str, run_id: str) -> Any:
        return await self.host.run_notebook(name, run_id)

    async def environments(self, refresh: bool) -> Any:
        return await self.host.environments(refresh=refresh)

    async def service_environment(self, name: str) -> Any:
        return await self.host.service_environment(name)


class RemoteFollow:
    """A log follow socket's stream from a remote host: :meth:`~.remote.RemoteHost.follow`, which resumes after the
    last cursor it delivered across reconnects (nothing lost, nothing twice), as the local socket's messages:
    ``hello`` (with ``host``), ``entries``, ``dropped``; while the host is out of reach, ``{"type": "lost",
    "host", "error"}`` (the HostError's JSON) once per failed attempt; a refusal (a bad cursor) is ``error``."""

    def __init__(self, target: RemoteTarget, name: str, unit: str, args: Dict[str, Any]) -> None:
        self.target, self.name, self.unit, self.args = target, name, unit, args
        self.task: Optional[asyncio.Task[None]] = None

    @classmethod
    async def open(
        cls,
        target: RemoteTarget,
        name: str,
        get: Callable[[str], Optional[str]],
        *,
        cursor: Optional[str],
        backlog: int,
    ) -> RemoteFollow:
        from .journal.query import FOLLOW_FILTERS

        service = await target.get(name)  # the service's 404, or the host's 503, before the upgrade
        args: Dict[str, Any] = {"cursor": cursor, "backlog": backlog}
        query = {key: value for key in FOLLOW_FILTERS if (value := get(key))}
        if query:
            args["query"] = query
        return cls(target, name, str(service.get("unit") or ""), args)

    def start(self, send: Callable[[str], Any], close: Callable[[int, str], Any]) -> None:
        host = self.target.name
        send(json.dumps({"type": "hello", "name": self.name, "unit": self.unit, "journal": None, "host": host}))
        self.task = asyncio.ensure_future(self._pump(send, close))

    async def _pump(self, send: Callable[[str], Any], close: Callable[[int, str], Any]) -> None:
        host = self.target.name
        stream = self.target.host.follow(self.name, **self.args)
        try:
            async for event in stream:
                if event.get("type") == "lost":
                    err = event.get("error")
                    error = err.to_json() if isinstance(err, CondaSvcError) else {"message": str(err)}
                    send(json.dumps({"type": "lost", "host": host, "error": error}))
                else:
                    send(json.dumps(event))
        except CondaSvcError as exc:  # the host refused the follow (e.g. the service was deleted meanwhile)
            try:
                send(json.dumps({"type": "error", "message": exc.message}))
                close(1008, exc.message[:120])
            except Exception:  # noqa: BLE001 - the socket is gone already
                pass
        except Exception:  # noqa: BLE001 - the socket closed under us: on_close stops the stream
            pass
        finally:
            await stream.aclose()

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


#: A mirror's listener: (mirror, the message it applied, its service names before, its host row before).
MirrorListener = Callable[["FleetMirror", Dict[str, Any], Set[str], Dict[str, Any]], None]


class FleetMirror(HostMirror):
    """A :class:`~.remote.HostMirror` that tells listeners what each message changed (the status socket)."""

    def __init__(self, host: RemoteHost) -> None:
        super().__init__(host)
        self.listeners: List[MirrorListener] = []
        self._text: Optional[Tuple[int, str]] = None  # (version, JSON of the services)

    def apply(self, event: Dict[str, Any]) -> None:
        before, row = set(self.services), self.row()
        super().apply(event)
        for listener in list(self.listeners):
            listener(self, event, before, row)

    @property
    def state(self) -> str:
        if self.error is not None:
            return "down"
        return "connecting" if self.stale else "up"

    def row(self) -> Dict[str, Any]:
        """This host in ``hosts``: ``{name, state, error}``."""
        return {
            "name": self.host.name,
            "state": self.state,
            "error": None if self.error is None else _error(self.error),
        }

    def view(self, svc: Dict[str, Any]) -> Dict[str, Any]:
        """One last known service as listed: with ``host``, ``stale`` and (while stale) ``stale_reason``."""
        out = {**svc, "host": self.host.name, "stale": self.stale}
        if self.stale:
            out["stale_reason"] = self.error.message if self.error is not None else "not connected yet"
        return out

    def views(self) -> List[Dict[str, Any]]:
        return [self.view(s) for s in self.services.values()]

    def services_json(self) -> str:
        """The services as a JSON array's items (no brackets), rebuilt only after a message changed them."""
        cached = self._text
        if cached is None or cached[0] != self.version:
            cached = self._text = (self.version, ", ".join(json.dumps(v) for v in self.views()))
        return cached[1]


def _error(exc: CondaSvcError) -> Dict[str, Any]:
    return exc.to_json()


class Fleet:
    """The configured hosts (``CondaSvcApp.hosts``, ``hosts_from_ssh_config``) and their mirrors."""

    def __init__(self, remotes: RemoteHosts, local: LocalTarget) -> None:
        self.remotes = remotes
        self.local = local
        self.mirrors: Dict[str, FleetMirror] = {}
        self._targets: Dict[str, RemoteTarget] = {}
        self.listeners: List[MirrorListener] = []
        self._closed = False

    def names(self) -> List[str]:
        """``local`` and every configured host, in order."""
        return [LOCAL, *(n for n in self.remotes.names() if n != LOCAL)]

    def check(self, host: Optional[str], *, allow_all: bool = False) -> str:
        """The one check of a request's ``host``: ``local`` (also when absent), a configured host, or (where a
        request may span every host) ``all``; anything else is a 400 naming the configured hosts."""
        if host is None or host == "":
            return ALL if allow_all else LOCAL
        if host == ALL and allow_all:
            return ALL
        names = self.names()
        if host in names:
            return host
        known = ", ".join(names) + (", or all" if allow_all else "")
        raise InvalidSpec(
            f"Unknown host '{host[:100]}': this server knows {known} (CondaSvcApp.hosts"
            f"{', and ~/.ssh/config with hosts_from_ssh_config' if not allow_all else ''}).",
            field="host",
        )

    def target(self, host: Optional[str]) -> Any:
        """The object a handler calls for ``host`` (checked); a remote host's mirror starts with its first use."""
        name = self.check(host)
        if name == LOCAL:
            return self.local
        target = self._targets.get(name)
        if target is None:
            target = self._targets[name] = RemoteTarget(self.remotes.get(name))
        self.mirror(name)
        return target

    def remote_host(self, host: str) -> RemoteHost:
        return self.remotes.get(host)

    def mirror(self, name: str) -> FleetMirror:
        mirror = self.mirrors.get(name)
        if mirror is None:
            mirror = self.mirrors[name] = FleetMirror(self.remotes.get(name))
            mirror.listeners.append(self._on_mirror)
            if not self._closed:
                mirror.start()
        return mirror

    def start_mirrors(self, names: Optional[List[str]] = None) -> List[FleetMirror]:
        return [self.mirror(n) for n in (names if names is not None else self.names()) if n != LOCAL]

    def _on_mirror(self, mirror: FleetMirror, event: Dict[str, Any], before: Set[str], row: Dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(mirror, event, before, row)

    # -- GET services ------------------------------------------------------------------------------------------
    async def list_json(self, host: Optional[str]) -> Tuple[str, str]:
        """``GET services``: the body (services and hosts) and its ETag, for one host or (None, ``all``) every one.

        The local part is :class:`~.views.ServiceViews`' text as it is (its fast path untouched); each remote
        host's part is its mirror's, re-encoded only when the mirror changed.
        """
        name = self.check(host, allow_all=True)
        local = name in (LOCAL, ALL)
        remote = [n for n in self.names() if n != LOCAL] if name == ALL else ([] if name == LOCAL else [name])
        mirrors = self.start_mirrors(remote)
        items: List[str] = []
        tags: List[str] = []
        rows: List[Dict[str, Any]] = []
        if local:
            try:
                body, etag = await self.local.views.list_json()
            except ManagerUnavailable as exc:
                if name != ALL or not mirrors:
                    raise  # this host alone: its 503, as without other hosts
                # every host: the others are still worth listing; this one says why it has none
                rows.append({"name": LOCAL, "state": "down", "error": {"message": exc.message, "kind": "manager"}})
                tags.append(f"local-down:{exc.message}")
            else:
                inner = _services_items(body)
                if inner:
                    items.append(inner)
                tags.append(etag.strip('"'))
                rows.append({"name": LOCAL, "state": "up", "error": None})
        for m in mirrors:
            inner = m.services_json()
            if inner:
                items.append(inner)
            rows.append(m.row())
            tags.append(f"{m.version}")
        hosts = json.dumps(rows)
        out = '{"services": [' + ", ".join(items) + '], "hosts": ' + hosts + "}"
        if not mirrors:
            return out, f'"{tags[0]}-l"'
        digest = hashlib.sha1(("\0".join(tags) + hosts).encode()).hexdigest()[:16]
        return out, f'"{digest}"'

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(m.close() for m in self.mirrors.values()), return_exceptions=True)


def _services_items(body: str) -> str:
    """The items of ``{"services": [ITEMS]}`` as ServiceViews writes it (decoded and re-encoded otherwise)."""
    head, tail = '{"services": [', "]}"
    if body.startswith(head) and body.endswith(tail):
        return body[len(head) : -len(tail)]
    return ", ".join(json.dumps(s) for s in json.loads(body)["services"])  # pragma: no cover - another shape


# -- the status socket ---------------------------------------------------------------------------------------
_LOCAL_TAG = '{"host": "local", '


class FleetEvents:
    """The status socket's hub over every host: the local :class:`~.status.StatusHub`'s messages (tagged
    ``host: local``, each snapshot completed with every mirror's services) and each mirror's, as
    ``service`` / ``status`` / ``removed`` / ``metrics`` messages with ``host``, plus a ``host`` message whenever
    a host's state changes. A host going down re-sends its services with ``stale: true``; its reconnect
    snapshot re-sends them fresh and removes the ones deleted meanwhile."""

    def __init__(self, hub: StatusHub, fleet: Fleet) -> None:
        self.hub = hub
        self.fleet = fleet
        self.clients: List[StatusClient] = []
        fleet.listeners.append(self._on_mirror)

    async def connect(self, send: Callable[[str], Any]) -> StatusClient:
        mirrors = self.fleet.start_mirrors()

        def merged(text: str) -> Any:
            """A snapshot of this host's services, with every other host's last known ones and the hosts."""
            msg = json.loads(text)
            msg["host"] = LOCAL
            msg["services"] = [*msg["services"], *(v for m in mirrors for v in m.views())]
            msg["hosts"] = [{"name": LOCAL, "state": "up", "error": None}, *(m.row() for m in mirrors)]
            return send(json.dumps(msg))

        snapshots = 0

        def local(text: str) -> Any:
            nonlocal snapshots
            if text.startswith('{"type": "snapshot"'):
                snapshots += 1
                return merged(text)
            if text.startswith('{"type": '):  # the local hub's (another host's messages start with their host)
                return send(_LOCAL_TAG + text[1:])
            return send(text)

        client = await self.hub.connect(local)
        self.clients.append(client)
        if not snapshots:  # this host's manager is out of reach (a "manager" message came): the others are not
            for m in mirrors:
                name = m.host.name
                for svc in m.services.values():
                    client.write(json.dumps({"host": name, "type": "service", "service": m.view(svc)}))
                client.write(json.dumps({"host": m.row(), "type": "host"}))
        return client

    def disconnect(self, client: StatusClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
        self.hub.disconnect(client)

    def _write(self, message: Dict[str, Any], key: str) -> None:
        """To every client, through its StatusClient (after its snapshot, within its backlog bound)."""
        text = json.dumps(message)
        for client in list(self.clients):
            if client.closed:
                self.clients.remove(client)
            else:
                client.write(text, key)

    def _on_mirror(self, mirror: FleetMirror, event: Dict[str, Any], before: Set[str], row: Dict[str, Any]) -> None:
        if not self.clients:
            return
        host, kind = mirror.host.name, event.get("type")
        key = f"\0{host}\0"
        now = mirror.row()
        if kind == "snapshot" or (kind in ("lost", "manager") and now != row):
            for name in sorted(before - set(mirror.services)):
                self._write({"host": host, "type": "removed", "name": name}, key + name)
            for svc in mirror.services.values():
                self._write({"host": host, "type": "service", "service": mirror.view(svc)}, key + svc["name"])
        elif kind == "service":
            svc = event["service"]
            self._write({"host": host, "type": "service", "service": mirror.view(svc)}, key + svc["name"])
        elif kind in ("status", "removed"):
            name = str(event.get("name"))
            self._write(_tagged(host, event), key + ("status:" if kind == "status" else "") + name)
        elif kind == "metrics":
            self._write(_tagged(host, event), key + "\0metrics")
        if now != row:
            self._write({"host": now, "type": "host"}, f"\0host\0{host}")


def _tagged(host: str, event: Dict[str, Any]) -> Dict[str, Any]:
    """Another host's message with its ``host`` first (so it is never taken for a local one)."""
    out: Dict[str, Any] = {"host": host}
    out.update((k, v) for k, v in event.items() if k != "host")
    return out
