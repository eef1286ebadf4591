"""``python -m jupyter_condasvc.bridge``: the service layer of this host, spoken over stdin/stdout.

The far end of :mod:`jupyter_condasvc.remote`. The client runs it on another host through one
OpenSSH connection (``ssh HOST python3 -m jupyter_condasvc.bridge``), the way Cockpit runs its
bridge: the same :class:`~jupyter_condasvc.services.ServiceManager` the CLI builds, from the remote
user's own configuration, against that host's user manager and journald.

Protocol: JSON lines, one object per line, UTF-8.

* First line from the bridge: ``{"hello": {"protocol": 1, "version", "user", "uid", "hostname", "root"}}``.
* Request: ``{"id": N, "op": OP, "args": {...}}``; answer ``{"id": N, "result": ...}`` or
  ``{"id": N, "error": {"message", "reason", "status"[, "field"]}}``. Requests run concurrently.
* ``doctor`` answers ``{"host": <GET host>, "doctor": <GET doctor>}`` of this host (``GET hosts`` shows it).
* ``runs``, ``run``, ``run_logs``, ``run_notebook``, ``environments``, ``preview`` and ``service_environment``
  answer what the local REST endpoint of the same meaning answers (``services/{name}/runs[/...]``,
  ``environments``, ``preview``, ``services/{name}/environment``), computed by the same function here
  (:class:`~jupyter_condasvc.hostops.LocalHost`), on this host's journal, files, environments and user manager.
* ``watch`` streams this host's status (the events socket's messages, see :mod:`~jupyter_condasvc.status`:
  a ``snapshot``, then ``status`` / ``service`` / ``removed`` / ``metrics``) as ``{"id": N, "event": ...}``
  until cancelled.
* ``follow`` answers ``{"id": N, "result": {"unit", "cursor"}}`` and then streams
  ``{"id": N, "event": {"type": "entries", "entries": [...], "cursor"}}`` (the follow socket's
  messages, see :class:`~jupyter_condasvc.journal.Follower`) until ``{"op": "cancel", "args": {"id": N}}``
  or the end of stdin. ``args.cursor`` resumes after that entry: no loss, no duplicate.

Secrets (a spec's ``environment``) arrive on stdin, inside SSH, and go where the local service layer
puts them (a 0600 file next to the record); never in a unit, a command line or this process's argv.
Nothing the bridge logs carries a spec. When stdin ends (the connection dropped), the bridge stops
its followers and exits; the services it created keep running under the host's user manager.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import sys
from typing import Any, Callable, Dict, Optional

from .errors import CondaSvcError, InvalidSpec
from .host import user_name
from .hostops import LocalHost

PROTOCOL = 1
#: Longest request line accepted (a spec with its variables fits many times over).
MAX_LINE = 16 * 1024 * 1024


def default_runtime_dir() -> None:
    """A session without pam_systemd (sshd with UsePAM=no, some HPC nodes) has no XDG_RUNTIME_DIR:
    use /run/user/UID when it is ours, as pam_systemd would have set it, so systemctl and D-Bus find the
    user manager."""
    if os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return
    path = f"/run/user/{os.getuid()}"
    try:
        if os.stat(path).st_uid == os.getuid():
            os.environ["XDG_RUNTIME_DIR"] = path
    except OSError:
        pass


class Bridge:
    """One session: reads requests, runs them on the service layer, writes answers."""

    def __init__(self, services: Any, settings: Any, out: Callable[[bytes], None], root: str) -> None:
        self.services = services
        #: The reads every host answers (runs, environments, preview...), by the functions the REST endpoints use.
        self.local = LocalHost(services)
        self.settings = settings
        self.out = out
        self.root = root
        self.tasks: Dict[int, asyncio.Task[None]] = {}
        self.follows: Dict[int, Any] = {}
        self.watches: Dict[int, Any] = {}
        self._hub: Any = None
        self._status: Any = None

    # -- output --
    def send(self, message: Dict[str, Any]) -> None:
        self.out(json.dumps(message).encode() + b"\n")

    def send_error(self, rid: Optional[int], message: str, reason: str, status: int) -> None:
        self.send({"id": rid, "error": {"message": message, "reason": reason, "status": status}})

    def hello(self) -> None:
        from . import __version__

        self.send(
            {
                "hello": {
                    "protocol": PROTOCOL,
                    "version": __version__,
                    "user": user_name(),
                    "uid": os.getuid(),
                    "hostname": socket.gethostname(),
                    "root": self.root,
                }
            }
        )

    # -- dispatch --
    def handle_line(self, line: bytes) -> None:
        try:
            req = json.loads(line)
            rid = req["id"]
            op = req["op"]
            args = req.get("args") or {}
            if not isinstance(rid, int) or not isinstance(op, str) or not isinstance(args, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.send_error(None, "A request line must be JSON {id, op, args}.", "BadRequest", 400)
            return
        if op == "cancel":
            self.cancel(args.get("id"))
            self.send({"id": rid, "result": {"cancelled": args.get("id")}})
            return
        task = asyncio.ensure_future(self.run(rid, op, args))
        self.tasks[rid] = task
        task.add_done_callback(functools.partial(self._forget_task, rid))

    def _forget_task(self, rid: int, _task: asyncio.Future[None]) -> None:
        self.tasks.pop(rid, None)

    async def run(self, rid: int, op: str, args: Dict[str, Any]) -> None:
        try:
            method = getattr(self, f"op_{op}", None)
            if method is None:
                raise InvalidSpec(f"The bridge has no operation '{op}'.", field="op")
            result = await method(rid, **args)
        except CondaSvcError as exc:
            self.send({"id": rid, "error": {**exc.to_json(), "status": exc.status}})
        except TypeError as exc:  # wrong arguments for the op
            self.send_error(rid, f"Bad arguments for '{op}': {exc}", "BadRequest", 400)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client gets a sentence, the session goes on
            self.send_error(rid, f"{type(exc).__name__}: {exc}", "BridgeError", 500)
        else:
            self.send({"id": rid, "result": result})

    def cancel(self, rid: Any) -> None:
        follower = self.follows.pop(rid, None)
        if follower is not None:
            self.hub.remove(follower)
        watcher = self.watches.pop(rid, None)
        if watcher is not None:
            self.status_hub.disconnect(watcher)
        task = self.tasks.pop(rid, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        for rid in list(self.follows):
            self.cancel(rid)
        for task in list(self.tasks.values()):
            task.cancel()
        if self._hub is not None:
            self._hub.close()
        if self._status is not None:
            self._status.close()

    @property
    def hub(self) -> Any:
        if self._hub is None:
            from .journal import FollowHub

            s = self.settings
            self._hub = FollowHub(
                interval=s.follow_interval,
                budget=s.follow_budget,
                max_pending=s.follow_max_pending,
                max_followers=s.follow_max_followers,
            )
        return self._hub

    @property
    def status_hub(self) -> Any:
        if self._status is None:
            from .status import StatusHub

            s = self.settings
            self._status = StatusHub(
                self.services,
                self.services.systemd,
                coalesce=s.status_coalesce,
                sample_interval=s.status_sample_interval,
                log=s.log,
            )
        return self._status

    # -- operations (each answers one JSON value) --
    async def op_ping(self, rid: int) -> Dict[str, Any]:
        return {"pong": True}

    async def op_doctor(self, rid: int) -> Dict[str, Any]:
        """This host's ``GET host`` report and ``doctor`` checks (what ``GET hosts`` shows for it)."""
        from .hosts import local_report

        return await local_report(self.services)

    async def op_list(self, rid: int) -> Dict[str, Any]:
        return {"services": await self.services.list()}

    async def op_get(self, rid: int, name: str, fresh: bool = False) -> Dict[str, Any]:
        return await self.services.get(name, fresh=fresh)

    async def op_create(self, rid: int, spec: Dict[str, Any]) -> Dict[str, Any]:
        return await self.services.create(spec)

    async def op_update(self, rid: int, name: str, patch: Dict[str, Any]) -> Dict[str, Any]:
        return await self.services.update(name, patch)

    async def op_act(self, rid: int, name: str, action: str) -> Dict[str, Any]:
        return await self.services.act(name, action)

    async def op_delete(self, rid: int, name: str) -> Dict[str, Any]:
        await self.services.delete(name)
        return {"deleted": name}

    async def op_unit_text(self, rid: int, name: str) -> Dict[str, Any]:
        return await self.services.unit_text(name)

    async def op_logs(self, rid: int, name: str, query: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        from .journal.query import LogQuery

        raw = {k: (None if v is None else str(v)) for k, v in (query or {}).items()}
        q = LogQuery.parse(raw.get, max_n=self.settings.log_page_max)
        page = await self.services.logs(name, q, max_scan=self.settings.log_max_scan)
        return page.to_dict()

    async def op_follow(
        self,
        rid: int,
        name: str,
        cursor: Optional[str] = None,
        backlog: int = 0,
        priority: Optional[str] = None,
        text: Optional[str] = None,
        query: Optional[Dict[str, str]] = None,
    ) -> Dict[str, Any]:
        """A live follow, filtered as the local follow socket filters: ``query`` holds its ``priority``, ``boot``
        (this host's boots), ``text`` and ``regex`` as they came; ``priority``/``text`` alone are the older form."""
        from .journal.query import FOLLOW_FILTERS, LogQuery

        raw = {k: str(v) for k, v in (query or {}).items() if k in FOLLOW_FILTERS}
        raw.update({k: v for k, v in (("priority", priority), ("text", text)) if v})
        q = LogQuery.parse(raw.get, max_n=self.settings.log_page_max, default_n=0)
        stream = await self.services.follow(name, q, cursor=cursor or None, backlog=int(backlog))
        prefix = b'{"id": %d, "event": ' % rid

        def send(text_: str) -> None:
            self.out(prefix + text_.encode() + b"}\n")

        follower = stream.start(self.hub, send)
        self.follows[rid] = follower
        return {"unit": stream.unit, "cursor": follower.cursor}

    async def op_runs(self, rid: int, name: str, limit: int = 50) -> Dict[str, Any]:
        """``GET services/{name}/runs``: the newest ``limit`` runs, newest first."""
        return await self.local.runs(name, limit=_int(limit, "limit", 1, 1000))

    async def op_run(self, rid: int, name: str, run_id: str) -> Dict[str, Any]:
        """``GET services/{name}/runs/{run_id}``."""
        return await self.local.run(name, str(run_id))

    async def op_run_logs(self, rid: int, name: str, run_id: str, n: int = 1000) -> Dict[str, Any]:
        """``GET services/{name}/runs/{run_id}/logs``: that run's lines (at most ``n``, this host's log_page_max)."""
        return await self.local.run_logs(name, str(run_id), n=_int(n, "n", 0, self.settings.log_page_max))

    async def op_run_notebook(self, rid: int, name: str, run_id: str) -> Dict[str, Any]:
        """``GET services/{name}/runs/{run_id}/notebook``: the executed copy that run wrote on this host."""
        return await self.local.run_notebook(name, str(run_id))

    async def op_environments(self, rid: int, refresh: bool = False) -> Dict[str, Any]:
        """``GET environments``: this host's environments (its user's conda and venvs), found by its finder."""
        return await self.local.environments(refresh=bool(refresh))

    async def op_preview(self, rid: int, spec: Dict[str, Any]) -> Dict[str, Any]:
        """``POST preview``: the unit (and timer) this host would write for ``spec``, resolved on this host."""
        return await self.local.preview(spec)

    async def op_service_environment(self, rid: int, name: str) -> Dict[str, Any]:
        """``GET services/{name}/environment``: its environment file at registration, now, and the drift."""
        return await self.local.service_environment(name)

    async def op_watch(self, rid: int) -> Dict[str, Any]:
        """The status stream of this host (the events socket's messages: a snapshot, then changes) as events."""
        prefix = b'{"id": %d, "event": ' % rid

        def send(text_: str) -> None:
            self.out(prefix + text_.encode() + b"}\n")

        self.watches[rid] = await self.status_hub.connect(send)
        return {"watching": True}


def _int(value: Any, field: str, low: int, high: int) -> int:
    """A whole-number argument within bounds, or the 400 naming it (as the REST handlers check it)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"{field} must be a whole number, not '{value}'.", field=field)
    if not low <= value <= high:
        raise InvalidSpec(f"{field} must be between {low} and {high}.", field=field)
    return value


async def serve(root: str, overrides: Any = ()) -> int:
    """Run one session on this process's stdin/stdout until stdin ends."""
    from .cli import load_settings

    loop = asyncio.get_running_loop()
    # The protocol owns the original stdout; anything else printing (a library, a warning) goes to stderr.
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    w_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(proto_fd, "wb", buffering=0))
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(0), "rb", buffering=0))

    settings = load_settings(list(overrides))
    settings.log_level = "ERROR"
    services = settings.build_services(root)
    services.finder.server_words = "jupyter_condasvc's environment on this host"
    bridge = Bridge(services, settings, w_transport.write, root)
    bridge.hello()
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line over MAX_LINE: the stream cannot be resynchronised
                bridge.send_error(None, "A request line is too long.", "BadRequest", 413)
                break
            if not line:
                break
            if line.strip():
                bridge.handle_line(line)
    finally:
        bridge.close()
        await services.systemd.close()
        w_transport.close()
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_condasvc.bridge", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", default=None, help="where relative paths resolve and must stay inside (default: home)"
    )
    args, overrides = parser.parse_known_args(argv)
    default_runtime_dir()
    root = os.path.realpath(os.path.expanduser(args.root or "~"))
    try:
        return asyncio.run(serve(root, overrides))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
