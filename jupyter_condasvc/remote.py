"""Services on other hosts: the client of :mod:`jupyter_condasvc.bridge`, over the user's own OpenSSH.

One :class:`RemoteHost` per host holds ONE ``ssh HOST <bridge command>`` subprocess (asyncio, never a
thread, never a blocking call) and multiplexes every request and log follow over it as JSON lines.
ssh runs with ``BatchMode=yes`` (never a prompt: keys or the agent), the user's ``~/.ssh/config`` and
agent, and ``ControlMaster=auto`` on a socket under ``$XDG_RUNTIME_DIR`` so other ssh sessions to the
host (the CLI's ``--host``, a terminal) share the same TCP connection.

A host that cannot be reached fails fast with a :class:`HostError` whose ``kind`` says why
(``unreachable``, ``auth``, ``hostkey-changed``, ``hostkey-unknown``, ``no-bridge``, ``protocol``) and
whose message names the fix, read from ssh's own stderr. After a failure the host is not dialled again
before a backoff delay (doubling up to ``max_backoff``): calls meanwhile fail at once with the last
error, so a dead host never slows another host or a local request. Follows reconnect by themselves and
resume after the last cursor they delivered: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Callable, Dict, List, Optional, Sequence

from .errors import CondaSvcError, JobFailed

#: Longest line read from the bridge (a list of many services is one line).
MAX_LINE = 64 * 1024 * 1024
DEFAULT_BRIDGE = "python3 -m jupyter_condasvc.bridge"


class HostError(CondaSvcError):
    """A host cannot be used now: ``kind`` says why, the message says what to do."""

    status = 503

    def __init__(self, message: str, *, kind: str, host: str, fix: str = "", detail: str = "") -> None:
        super().__init__(f"{message} {fix}".strip())
        self.kind = kind
        self.host = host
        self.fix = fix
        self.detail = detail

    def to_json(self) -> dict:
        return {**super().to_json(), "host": self.host, "kind": self.kind, "fix": self.fix}


class RemoteError(CondaSvcError):
    """An error the bridge answered (a domain error on the remote host), with its HTTP status."""

    def __init__(self, host: str, error: Dict[str, Any]) -> None:
        message = error.get("message") or "the remote host refused the request"
        super().__init__(f"{host}: {message}", field=error.get("field"))
        self.status = int(error.get("status") or 500)
        self.reason = str(error.get("reason") or "RemoteError")
        self.host = host

    def to_json(self) -> dict:
        return {**super().to_json(), "reason": self.reason, "host": self.host}


class RemoteJobFailed(RemoteError, JobFailed):
    """A start/stop/restart job on the remote host ended badly (the CLI's exit code 1, as locally)."""


def remote_error(host: str, error: Dict[str, Any]) -> RemoteError:
    """The RemoteError for a bridge's error answer, of the class the local layer would have raised."""
    cls = RemoteJobFailed if error.get("reason") == "JobFailed" else RemoteError
    return cls(host, error)


# -- what ssh said ------------------------------------------------------------------
_UNREACHABLE = re.compile(
    r"Connection refused|Connection timed out|timed out during banner exchange|No route to host|Network is unreachable"
    r"|Could not resolve hostname|Name or service not known|Connection reset|Connection closed by|"
    r"kex_exchange_identification|Broken pipe|Control socket connect",
    re.I,
)


def classify(host: str, stderr: str, returncode: Optional[int]) -> HostError:
    """A HostError from ssh's stderr and exit status (pure: unit-tested on ssh's own messages)."""
    text = stderr.strip()
    last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or ("Host key for" in text and "has changed" in text):
        return HostError(
            f"The host key of {host} has changed since you last connected: it may have been reinstalled, or someone "
            "may be intercepting the connection.",
            kind="hostkey-changed",
            host=host,
            fix=f"If the change is expected, remove the old key with `ssh-keygen -R {host}` (or the line ssh names in "
            f"known_hosts) and connect once with `ssh {host}` to accept the new one.",
            detail=text,
        )
    if "Host key verification failed" in text or re.search(r"No \S+ host key is known", text):
        return HostError(
            f"The host key of {host} is not known yet (ssh runs without prompts here).",
            kind="hostkey-unknown",
            host=host,
            fix=f"Connect once from a terminal with `ssh {host}` and accept its key.",
            detail=text,
        )
    if "Permission denied" in text or "Too many authentication failures" in text:
        return HostError(
            f"{host} refused the login (no key it accepts; passwords cannot be typed here).",
            kind="auth",
            host=host,
            fix=f"Install your public key on it (`ssh-copy-id {host}`) or load it into your agent "
            f"(`ssh-add`), then check that `ssh -o BatchMode=yes {host} true` works.",
            detail=text,
        )
    if _UNREACHABLE.search(text) or returncode == 255:
        reason = last or "ssh exited with status 255"
        return HostError(
            f"{host} cannot be reached: {reason}.",
            kind="unreachable",
            host=host,
            fix="Check that the host is up and that `ssh " + host + " true` works from this machine; "
            "it is retried with backoff.",
            detail=text,
        )
    missing = ("No module named", "command not found", "No such file or directory")
    if returncode == 127 or any(m in text for m in missing):
        return HostError(
            f"jupyter_condasvc is not installed on {host} (the bridge did not start: {last}).",
            kind="no-bridge",
            host=host,
            fix=f"Install it there (`ssh {host} python3 -m pip install --user jupyter_condasvc`), or set "
            "CondaSvcApp.host_bridge_commands to the command that runs it on that host.",
            detail=text,
        )
    return HostError(
        f"The connection to {host} ended ({last or f'exit status {returncode}'}).",
        kind="unreachable",
        host=host,
        fix="It is retried with backoff.",
        detail=text,
    )


@dataclass
class HostState:
    """What the client knows about one host (the future ``GET hosts`` row)."""

    name: str
    connected: bool = False
    hello: Optional[Dict[str, Any]] = None
    error: Optional[HostError] = None
    failures: int = 0
    retry_at: float = 0.0
    connected_at: Optional[float] = None
    connects: int = 0

    def to_json(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "connected": self.connected,
            "hello": self.hello,
            "connects": self.connects,
            "error": None if self.error is None else self.error.to_json(),
        }


@dataclass
class _Follow:
    queue: asyncio.Queue[Dict[str, Any]] = field(default_factory=asyncio.Queue)


class RemoteHost:
    """One host: one ssh subprocess running the bridge, shared by every call and follow."""

    def __init__(
        self,
        name: str,
        *,
        bridge_command: str = DEFAULT_BRIDGE,
        ssh: str = "ssh",
        ssh_args: Sequence[str] = (),
        connect_timeout: float = 15.0,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        call_timeout: float = 300.0,
        control_dir: Optional[str] = None,
    ) -> None:
        self.name = name
        self.bridge_command = bridge_command
        self.ssh = ssh
        self.ssh_args = list(ssh_args)
        self.connect_timeout = connect_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.call_timeout = call_timeout
        self.control_dir = control_dir if control_dir is not None else _control_dir()
        self.state = HostState(name)
        self._proc: Optional[asyncio.subprocess.Process] = None
        self._reader: Optional[asyncio.Task[None]] = None
        self._stderr_task: Optional[asyncio.Task[None]] = None
        self._stderr: List[str] = []
        self._pending: Dict[int, asyncio.Future[Any]] = {}
        self._follows: Dict[int, _Follow] = {}
        self._next_id = 0
        self._connecting: Optional[asyncio.Future[None]] = None
        self._closed = False

    # -- the connection --
    def argv(self) -> List[str]:
        opts = [
            "-o",
            "BatchMode=yes",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            f"ConnectTimeout={max(1, int(self.connect_timeout))}",
            "-T",
            "-x",
        ]
        if self.control_dir:
            opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_dir}/%C", "-o", "ControlPersist=no"]
        return [self.ssh, *opts, *self.ssh_args, "--", self.name, self.bridge_command]

    async def connect(self) -> Dict[str, Any]:
        """Connected, or a HostError now (during a backoff: the last error, without dialling)."""
        if self._closed:
            raise HostError(f"The client of {self.name} is closed.", kind="closed", host=self.name)
        if self.state.connected and self._proc is not None and self._proc.returncode is None:
            return self.state.hello or {}
        if self._connecting is None:
            if self.state.error is not None and time.monotonic() < self.state.retry_at:
                raise self.state.error.with_traceback(None)  # one instance, raised again: no growing traceback
            self._connecting = asyncio.ensure_future(self._dial())
        fut = self._connecting
        try:
            await asyncio.shield(fut)
        finally:
            if fut.done() and self._connecting is fut:
                self._connecting = None
        return self.state.hello or {}

    async def _dial(self) -> None:
        if self.control_dir:
            os.makedirs(self.control_dir, mode=0o700, exist_ok=True)
        buf: List[str] = []
        self._stderr = buf
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=MAX_LINE,
                start_new_session=True,
            )
        except OSError as exc:
            self._failed(
                HostError(
                    f"Cannot run ssh ({exc.strerror or exc}).",
                    kind="unreachable",
                    host=self.name,
                    fix="Install the OpenSSH client (`ssh`).",
                )
            )
            raise self.state.error from exc  # type: ignore[misc]
        self._proc = proc
        self._stderr_task = asyncio.ensure_future(self._read_stderr(proc, buf))
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), self.connect_timeout)  # type: ignore[union-attr]
            hello = json.loads(line)["hello"] if line else None
        except asyncio.TimeoutError:
            hello = None
            await self._kill(proc)
            err: Optional[HostError] = HostError(
                f"{self.name} did not answer within {self.connect_timeout:g} s.",
                kind="unreachable",
                host=self.name,
                fix="It is retried with backoff.",
            )
        except (ValueError, KeyError, TypeError):
            hello = None
            await self._kill(proc)
            err = HostError(
                f"The bridge on {self.name} spoke something else than expected.",
                kind="protocol",
                host=self.name,
                fix="Install the same version of jupyter_condasvc there as here.",
            )
        else:
            err = None
        if hello is None:
            if err is None:  # EOF: ssh or the bridge exited; its stderr says why
                code = await proc.wait()
                await asyncio.wait({self._stderr_task}, timeout=2)
                err = classify(self.name, "".join(buf), code)
            self._failed(err)
            raise err
        self.state.connected, self.state.hello, self.state.error = True, hello, None
        self.state.failures = 0
        self.state.connected_at = time.monotonic()
        self.state.connects += 1
        self._reader = asyncio.ensure_future(self._read(proc))

    def _failed(self, err: HostError) -> None:
        self.state.connected = False
        self.state.error = err
        self.state.failures += 1
        delay = min(self.max_backoff, self.min_backoff * 2 ** (self.state.failures - 1))
        self.state.retry_at = time.monotonic() + delay

    async def _read_stderr(self, proc: asyncio.subprocess.Process, buf: List[str]) -> None:
        assert proc.stderr is not None
        size = 0
        while True:
            chunk = await proc.stderr.read(4096)
            if not chunk:
                return
            if size < 64 * 1024:
                buf.append(chunk.decode("utf-8", "replace"))
                size += len(chunk)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                try:
                    line = await proc.stdout.readline()
                except ValueError:  # over MAX_LINE: cannot resynchronise
                    break
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                self._dispatch(msg)
        finally:
            if self._proc is proc:
                await self._lost(proc)

    def _dispatch(self, msg: Dict[str, Any]) -> None:
        rid = msg.get("id")
        if "event" in msg:
            f = self._follows.get(rid)  # type: ignore[arg-type]
            if f is not None:
                f.queue.put_nowait(msg["event"])
            return
        fut = self._pending.pop(rid, None)  # type: ignore[arg-type]
        if fut is None or fut.done():
            return
        if "error" in msg:
            fut.set_exception(remote_error(self.name, msg["error"] or {}))
        else:
            fut.set_result(msg.get("result"))

    async def _lost(self, proc: asyncio.subprocess.Process) -> None:
        """The connection ended: fail what waits on it, tell its follows, remember why.

        What belongs to this connection is taken before the first await: a request or follow made on a
        new connection meanwhile is not failed by the old one's end.
        """
        self.state.connected = False
        pending, self._pending = self._pending, {}
        follows = list(self._follows.values())
        stderr_task, buf = self._stderr_task, self._stderr
        code = await _wait_quietly(proc, 5)
        if stderr_task is not None:
            await asyncio.wait({stderr_task}, timeout=2)
        err = (
            classify(self.name, "".join(buf), code)
            if not self._closed
            else HostError(f"The client of {self.name} is closed.", kind="closed", host=self.name)
        )
        if self._proc is proc:
            self._proc = None
            if not self.state.connected:
                self.state.error = err
                # a drop after a good connection: redial soon, then back off if it keeps failing
                self.state.retry_at = time.monotonic() + self.min_backoff
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)
        for f in follows:
            f.queue.put_nowait({"type": "lost", "error": err})

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        await _wait_quietly(proc, 5)

    def _send(self, rid: int, op: str, args: Dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise self.state.error or HostError(f"Not connected to {self.name}.", kind="unreachable", host=self.name)
        proc.stdin.write(json.dumps({"id": rid, "op": op, "args": args}).encode() + b"\n")

    # -- requests --
    async def call(self, op: str, **args: Any) -> Any:
        """One request; its answer, or RemoteError (the host said no) / HostError (no host)."""
        await self.connect()
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            self._send(rid, op, args)
            return await asyncio.wait_for(asyncio.shield(fut), self.call_timeout)
        except asyncio.TimeoutError:
            raise HostError(
                f"{self.name} did not answer '{op}' within {self.call_timeout:g} s.",
                kind="unreachable",
                host=self.name,
                fix="The host or its user manager may be overloaded; try again.",
            ) from None
        finally:
            self._pending.pop(rid, None)

    async def list(self) -> List[Dict[str, Any]]:
        return (await self.call("list"))["services"]

    async def get(self, name: str, *, fresh: bool = False) -> Dict[str, Any]:
        return await self.call("get", name=name, fresh=fresh)

    async def create(self, spec: Dict[str, Any]) -> Dict[str, Any]:
        return await self.call("create", spec=spec)

    async def update(self, name: str, patch: Dict[str, Any]) -> Dict[str, Any]:
        return await self.call("update", name=name, patch=patch)

    async def act(self, name: str, action: str) -> Dict[str, Any]:
        return await self.call("act", name=name, action=action)

    async def delete(self, name: str) -> None:
        await self.call("delete", name=name)

    async def unit_text(self, name: str) -> Dict[str, Any]:
        return await self.call("unit_text", name=name)

    async def runs(self, name: str, limit: int = 50) -> Dict[str, Any]:
        """``GET services/{name}/runs`` of this host."""
        return await self.call("runs", name=name, limit=limit)

    async def run(self, name: str, run_id: str) -> Dict[str, Any]:
        """``GET services/{name}/runs/{run_id}`` of this host."""
        return await self.call("run", name=name, run_id=run_id)

    async def run_logs(self, name: str, run_id: str, n: int = 1000) -> Dict[str, Any]:
        """``GET services/{name}/runs/{run_id}/logs`` of this host."""
        return await self.call("run_logs", name=name, run_id=run_id, n=n)

    async def run_notebook(self, name: str, run_id: str) -> Dict[str, Any]:
        """``GET services/{name}/runs/{run_id}/notebook`` of this host (the executed copy, as notebook JSON)."""
        return await self.call("run_notebook", name=name, run_id=run_id)

    async def environments(self, refresh: bool = False) -> Dict[str, Any]:
        """``GET environments`` of this host: its user's environments, found there."""
        return await self.call("environments", refresh=refresh)

    async def preview(self, spec: Dict[str, Any]) -> Dict[str, Any]:
        """``POST preview`` on this host: the unit it would write for ``spec``."""
        return await self.call("preview", spec=spec)

    async def service_environment(self, name: str) -> Dict[str, Any]:
        """``GET services/{name}/environment`` of this host."""
        return await self.call("service_environment", name=name)

    async def logs(self, name: str, **query: Any) -> Dict[str, Any]:
        return await self.call("logs", name=name, query={k: v for k, v in query.items() if v is not None})

    async def follow(
        self,
        name: str,
        *,
        cursor: Optional[str] = None,
        backlog: int = 0,
        priority: Optional[str] = None,
        text: Optional[str] = None,
        query: Optional[Dict[str, str]] = None,
        reconnect: bool = True,
    ) -> AsyncGenerator[Dict[str, Any], None]:
        """The unit's new entries as they come, as the follow socket's messages (``entries``, ``dropped``).

        When the connection drops it yields ``{"type": "lost", "error": HostError}`` (and, while the host
        stays down, one per failed attempt), redials with backoff, and resumes after the last cursor it
        delivered, so every entry comes exactly once. Without ``reconnect`` the HostError is raised.
        """
        last = cursor

        def args() -> Dict[str, Any]:
            out: Dict[str, Any] = {"name": name, "cursor": last, "backlog": 0 if last else backlog}
            if priority:
                out["priority"] = priority
            if text:
                out["text"] = text
            if query:
                out["query"] = query  # priority, boot, text, regex: parsed on the host, as its local socket does
            return out

        def started(result: Dict[str, Any]) -> None:
            nonlocal last
            if last is None:  # resume from where this follow began (before its backlog, if any)
                last = result.get("cursor")

        stream = self._stream("follow", args, reconnect=reconnect, started=started)
        try:
            async for event in stream:
                if event.get("type") == "entries" and event.get("cursor"):
                    last = event["cursor"]
                yield event
        finally:
            await stream.aclose()  # at once: the remote follow is cancelled when the caller stops reading

    async def watch(self) -> AsyncGenerator[Dict[str, Any], None]:
        """The host's status stream: a ``snapshot`` of all its services, then ``status`` / ``service`` /
        ``removed`` / ``metrics`` messages as they happen (the events socket's messages). When the connection
        drops it yields ``{"type": "lost", "error": HostError}``, redials with backoff, and starts again
        with a fresh snapshot (which replaces whatever the caller kept)."""
        stream = self._stream("watch", dict)
        try:
            async for event in stream:
                yield event
        finally:
            await stream.aclose()

    async def _stream(
        self,
        op: str,
        args: Callable[[], Dict[str, Any]],
        *,
        reconnect: bool = True,
        started: Optional[Callable[[Any], None]] = None,
    ) -> AsyncGenerator[Dict[str, Any], None]:
        """The events of a streaming request (follow, watch), across reconnects: ``args()`` is asked again at
        each (re)start, ``started(result)`` gets the request's answer when given (watch's comes after its
        snapshot, and is not waited for)."""
        while True:
            try:
                await self.connect()
            except HostError as err:
                if not reconnect:
                    raise
                yield {"type": "lost", "error": err}
                await asyncio.sleep(max(self.state.retry_at - time.monotonic(), self.min_backoff))
                continue
            self._next_id += 1
            rid = self._next_id
            f = _Follow()
            self._follows[rid] = f
            event: Dict[str, Any]
            try:
                if started is not None:
                    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                    self._pending[rid] = fut
                self._send(rid, op, args())
                if started is not None:
                    started(await fut)
                while True:
                    event = await f.queue.get()
                    if event.get("type") == "lost":
                        break
                    yield event
            except HostError as err:
                event = {"type": "lost", "error": err}
            finally:
                self._follows.pop(rid, None)
                self._pending.pop(rid, None)
                if self._proc is not None and self._proc.returncode is None:
                    try:
                        self._cancel_remote(rid)
                    except Exception:  # noqa: BLE001 - the connection is going away anyway
                        pass
            if not reconnect:
                raise event["error"]
            yield event

    def _cancel_remote(self, rid: int) -> None:
        if self.state.connected:
            self._next_id += 1
            self._send(self._next_id, "cancel", {"id": rid})

    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()  # a dial still waiting for its hello
            await asyncio.wait({self._connecting}, timeout=2)
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()  # the bridge ends at EOF
            except Exception:  # noqa: BLE001
                pass
            if await _wait_quietly(proc, 5 if self.state.connected else 0.5) is None:
                await self._kill(proc)
        for task in (self._reader, self._stderr_task):
            if task is not None and not task.done():
                await asyncio.wait({task}, timeout=2)
                task.cancel()


class HostMirror:
    """The last known services of one host, kept current by its status stream (:meth:`RemoteHost.watch`).

    A list of a remote host's services is then a read of memory, as fast as a local one, and while the
    host is unreachable the last known list stays, marked ``stale`` with the reason (``error``); the next
    snapshot after a reconnect replaces it whole, so nothing is kept that was deleted meanwhile.
    """

    def __init__(self, host: RemoteHost) -> None:
        self.host = host
        self.services: Dict[str, Dict[str, Any]] = {}
        #: True until the first snapshot, and whenever the host or its user manager is out of reach.
        self.stale = True
        self.error: Optional[CondaSvcError] = None
        #: Bumped at every message applied (tests and pollers wait on it).
        self.version = 0
        self._changed = asyncio.Event()
        self._task: Optional[asyncio.Task[None]] = None

    def start(self) -> HostMirror:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        stream = self.host.watch()
        try:
            async for event in stream:
                self.apply(event)
        finally:
            await stream.aclose()

    def apply(self, event: Dict[str, Any]) -> None:
        """One status-stream message (the events socket's shapes, plus ``lost``) applied to the mirror."""
        kind = event.get("type")
        if kind == "snapshot":
            self.services = {s["name"]: s for s in event.get("services") or []}
            self.stale, self.error = False, None
        elif kind == "service":
            svc = event["service"]
            self.services[svc["name"]] = svc
        elif kind == "status":
            svc = self.services.get(event.get("name"))  # type: ignore[arg-type]
            if svc is not None:
                svc["status"] = {**svc["status"], **(event.get("status") or {})}
        elif kind == "removed":
            self.services.pop(event.get("name"), None)  # type: ignore[arg-type]
        elif kind == "metrics":
            for name, values in (event.get("services") or {}).items():
                if name in self.services:
                    self.services[name]["status"].update(values)
        elif kind == "manager":  # the host answers, its user manager does not (a snapshot follows its return)
            self.stale = True
            self.error = HostError(
                f"{self.host.name}: {event.get('message') or 'its user manager is unreachable'}",
                kind="manager",
                host=self.host.name,
            )
        elif kind == "lost":
            self.stale, self.error = True, event.get("error")
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def list(self) -> List[Dict[str, Any]]:
        """The services as last known, each with ``host`` and ``stale``."""
        return [{**svc, "host": self.host.name, "stale": self.stale} for svc in self.services.values()]

    async def changed(self) -> None:
        """Wait for the next message applied."""
        await self._changed.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)


async def _wait_quietly(proc: asyncio.subprocess.Process, timeout: float) -> Optional[int]:
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        return None


def _control_dir() -> str:
    """Where ControlMaster sockets go: private to the user (``$XDG_RUNTIME_DIR``, else ~/.ssh)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.ssh")
    return os.path.join(base, "condasvc-ssh")


class RemoteHosts:
    """Every host's client, by name, built from the settings (``CondaSvcApp.hosts`` and friends)."""

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        self.settings = settings
        self.kwargs = kwargs
        self.hosts: Dict[str, RemoteHost] = {}
        self._ssh_aliases: Any = None

    def names(self) -> List[str]:
        """The configured hosts: ``CondaSvcApp.hosts``, then (with ``hosts_from_ssh_config``) every concrete
        ``Host`` alias of ``~/.ssh/config`` not listed already."""
        names = list(getattr(self.settings, "hosts", []) or [])
        if getattr(self.settings, "hosts_from_ssh_config", False):
            if self._ssh_aliases is None:
                from .sshconfig import AliasCache

                self._ssh_aliases = AliasCache()
            names += [a for a in self._ssh_aliases.aliases() if a not in names and a != "local"]
        return names

    def bridge_command(self, name: str) -> str:
        s = self.settings
        per_host = dict(getattr(s, "host_bridge_commands", {}) or {})
        return per_host.get(name) or getattr(s, "host_bridge_command", None) or DEFAULT_BRIDGE

    def get(self, name: str) -> RemoteHost:
        if not name or name.startswith("-") or any(c.isspace() for c in name):
            from .errors import InvalidSpec

            raise InvalidSpec(f"'{name}' is not a host name or ~/.ssh/config alias.", field="host")
        host = self.hosts.get(name)
        if host is None:
            kw = dict(self.kwargs)
            s = self.settings
            if s is not None:
                kw.setdefault("ssh_args", list(getattr(s, "host_ssh_args", []) or []))
                kw.setdefault("connect_timeout", float(getattr(s, "host_connect_timeout", 15.0)))
            command = kw.pop("bridge_command", None) or self.bridge_command(name)
            host = self.hosts[name] = RemoteHost(name, bridge_command=command, **kw)
        return host

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self.hosts.values()), return_exceptions=True)


def quote_command(argv: Sequence[str]) -> str:
    """A bridge command for ``host_bridge_commands`` from an argv (ssh hands the remote shell one string)."""
    return " ".join(shlex.quote(a) for a in argv)
