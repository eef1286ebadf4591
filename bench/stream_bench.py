#!/usr/bin/env python3
"""Live logs and status: jupyter_condasvc's WebSockets vs journalctl / raw D-Bus, in one run.

Issue 4's goals, each measured against its anchor on the same machine, in the
same run, printed with the ratio:

1. log line written by a service -> WebSocket client: p50 <= 15 ms, p95 <= 30 ms,
   vs ``journalctl --user -f`` following the same unit at the same time
   (each line carries the CLOCK_REALTIME it was written at);
2. server CPU per followed service (<= 1 % of a core), K services at 20 lines/s;
3. state change -> status WebSocket client: p95 <= 10 ms (from systemd's own
   StateChangeTimestamp), vs a raw D-Bus PropertiesChanged subscriber in this
   process;
4. last 1000 entries via ``GET services/{name}/logs?n=1000``: server time
   (tornado's request_time, logged at DEBUG) <= 10 ms, vs ``journalctl -o json
   -n 1000`` + parsing;
5. nobody watching, ~50 services running and logging: no follow/status timers,
   server idle CPU ~0;
6. one service logging as fast as it can for ``--duration`` seconds (10 s by
   default; ``--full`` is the documented 60 s): the follower keeps up or is told
   what was dropped, server memory stays bounded, and the server's event loop is
   never blocked for more than 10 ms (a 2 ms probe task inside the server,
   switched on only for this phase).

It starts its own ``python -m jupyter_server`` with the extension and a probe
extension (this file, imported as ``stream_bench``: ``/condasvc-bench/probe``),
own unit prefix, temporary state dir and conda-layout environment, and deletes
its services and sweeps its unit files at the end (also on Ctrl-C).

Run it as an unprivileged user with a working ``systemctl --user``: see
bench/README.md ("stream") for the command on the project's machines.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional

import _common

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

# ----------------------------------------------------------------------------
# The probe: a server extension living in this file (imported as stream_bench).
# ----------------------------------------------------------------------------


class _Probe:
    lags: ClassVar[List[float]] = []  # wall-clock lateness of a 2 ms sleep: loop blocked OR process not scheduled
    cpu: ClassVar[List[float]] = []  # CPU the server's thread used meanwhile: how long the loop itself was busy
    task: Optional[asyncio.Task] = None


async def _lag_loop(period: float = 0.002) -> None:
    loop = asyncio.get_running_loop()
    while True:
        t, c = loop.time(), time.thread_time()
        await asyncio.sleep(period)
        _Probe.lags.append((loop.time() - t - period) * 1000)
        _Probe.cpu.append((time.thread_time() - c) * 1000)


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.base.handlers import APIHandler
    from tornado import web

    class ProbeHandler(APIHandler):
        @web.authenticated
        def get(self) -> None:
            s = self.settings
            follow, status = s["condasvc_follow"], s["condasvc_status"]
            loop = asyncio.get_running_loop()
            rss = 0  # anonymous resident memory: the heap, not the journal files sd-journal maps
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        rss = int(line.split()[1]) * 1024
            if self.get_query_argument("rss", None):  # the cheap sample taken every second during the flood
                self.finish(json.dumps({"rss": rss}))
                return
            lags = sorted(_Probe.lags)
            cpu = sorted(_Probe.cpu)
            self.finish(
                json.dumps(
                    {
                        "followers": len(follow.followers),
                        "follow_timer": follow.timer_running,
                        "follow_ticks": follow.ticks,
                        "follow_dropped": follow.total_dropped,
                        "status_clients": len(status.clients),
                        "status_timers": status.timers_running,
                        "status_pushes": status.pushes,
                        "status_quick_misses": getattr(status, "quick_misses", None),
                        "loop_scheduled": len(getattr(loop, "_scheduled", [])),
                        "rss": rss,
                        "lag": {
                            "samples": len(lags),
                            "max_ms": lags[-1] if lags else None,
                            "p99_ms": lags[int(0.99 * (len(lags) - 1))] if lags else None,
                            "over_10ms": sum(1 for x in lags if x > 10),
                            "busy_max_ms": cpu[-1] if cpu else None,
                            "busy_over_10ms": sum(1 for x in cpu if x > 10),
                        },
                    }
                )
            )

        @web.authenticated
        def post(self) -> None:
            what = self.get_query_argument("lag")
            if what == "start" and _Probe.task is None:
                _Probe.lags, _Probe.cpu = [], []
                _Probe.task = asyncio.ensure_future(_lag_loop())
            elif what == "stop" and _Probe.task is not None:
                _Probe.task.cancel()
                _Probe.task = None
            self.finish("{}")

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(base.rstrip("/") + "/condasvc-bench/probe", ProbeHandler)])


def _jupyter_server_extension_points() -> List[Dict[str, str]]:
    return [{"module": "stream_bench"}]


# ----------------------------------------------------------------------------
# The bench.
# ----------------------------------------------------------------------------


def say(*args: Any) -> None:
    print("[stream_bench]", *args, file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


free_port = _common.free_port


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def user_env() -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "USER", "LANG", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
    }
    env.setdefault("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
    return env


class Server:
    def __init__(self, tmp: Path, prefix: str, conda_root: Path) -> None:
        self.tmp, self.prefix, self.token = tmp, prefix, secrets.token_hex(16)
        self.port = free_port()
        self.root = tmp / "root"
        self.root.mkdir()
        self.log_path = tmp / "server.log"
        cfg = {
            "ServerApp": {
                "port": self.port,
                "ip": "127.0.0.1",
                "open_browser": False,
                "root_dir": str(self.root),
                "jpserver_extensions": {"jupyter_condasvc": True, "stream_bench": True},
                "log_level": "DEBUG",
            },
            "CondaSvcApp": {
                "log_level": "DEBUG",
                "unit_prefix": prefix,
                "state_dir": str(tmp / "state"),
                "default_restart": "no",
            },
            "EnvironmentFinder": {"conda_roots": [str(conda_root)], "use_conda_executable": False},
        }
        cfg_dir = tmp / "jupyter-config"
        cfg_dir.mkdir()
        (cfg_dir / "jupyter_server_config.json").write_text(json.dumps(cfg))
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), str(BENCH), env.get("PYTHONPATH")])),
            JUPYTER_TOKEN=self.token,
            JUPYTER_CONFIG_DIR=str(cfg_dir),
            JUPYTER_RUNTIME_DIR=str(tmp / "rt"),
        )
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--config={cfg_dir / 'jupyter_server_config.json'}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        log.close()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                code, _ = await self.fetch("GET", "/api/status")
                if code == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    async def fetch(self, method: str, path: str, body: Any = None) -> Any:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        kw: Dict[str, Any] = {
            "method": method,
            "headers": {"Authorization": f"token {self.token}"},
            "request_timeout": 120,
        }
        if body is not None or method in ("POST", "PATCH"):
            kw["body"] = json.dumps(body or {})
        try:
            resp = await AsyncHTTPClient().fetch(self.base + path, **kw)
        except HTTPClientError as exc:
            if exc.response is None:
                raise
            resp = exc.response
        text = resp.body.decode() if resp.body else ""
        try:
            return resp.code, (json.loads(text) if text else None)
        except ValueError:
            return resp.code, text

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        code, data = await self.fetch(method, "/condasvc/api/" + path, body)
        if code >= 300:
            raise RuntimeError(f"{method} {path} -> {code}: {data}")
        return data

    async def ws(self, path: str) -> Any:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        return await websocket_connect(
            HTTPRequest(self.ws_base + path, headers={"Authorization": f"token {self.token}"}),
            max_message_size=256 * 1024 * 1024,
        )

    def logged_ms(self, needle: str) -> List[float]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if needle in line:
                m = re.search(r" ([0-9.]+)ms", line)
                if m:
                    out.append(float(m.group(1)))
        return out

    def stop(self) -> None:
        _common.stop_group(self.proc)


LAT_SCRIPT = """\
import sys, time
rate = float(sys.argv[1])
i = 0
while True:
    print(f"LAT {time.time_ns()} {i}", flush=True)
    i += 1
    time.sleep(1.0 / rate)
"""

FLOOD_SCRIPT = """\
import sys, time
end = time.monotonic() + float(sys.argv[1])
w = sys.stdout.write
i = 0
while time.monotonic() < end:
    for _ in range(100):
        w(f"FLOOD {i} {time.time_ns()}\\n")
        i += 1
    sys.stdout.flush()
print(f"FLOOD-END {i}", flush=True)
"""

BULK_SCRIPT = """\
for i in range(3000):
    print(f"bulk line {i} " + "x" * 40)
print("BULK-END", flush=True)
"""


async def create(
    server: Server, name: str, script: str, args: Sequence[str] = (), kind: str = "script"
) -> Dict[str, Any]:
    if kind == "script":
        (server.root / f"{name}.py").write_text(script)
        spec = {"name": name, "kind": "script", "env": "bench", "path": f"{name}.py", "args": list(args)}
    else:
        spec = {"name": name, "kind": "command", "env": "bench", "argv": list(args)}
    return await server.api("POST", "services", spec)


def parse_lat(message: str) -> Optional[float]:
    if message.startswith("LAT "):
        return time.time_ns() / 1e6 - int(message.split()[1]) / 1e6
    return None


async def phase_latency(server: Server, seconds: float, rate: float) -> Dict[str, Any]:
    """Goal 1: one service at ``rate`` lines/s, followed by our WebSocket and by journalctl -f at once."""
    await create(server, "lat", LAT_SCRIPT, [str(rate)])
    unit = f"{server.prefix}lat.service"
    ws = await server.ws("/condasvc/api/services/lat/logs/follow")
    await ws.read_message()  # hello
    jc = await asyncio.create_subprocess_exec(
        "journalctl", "--user", "-f", "-n", "0", "-u", unit, "-o", "cat", stdout=asyncio.subprocess.PIPE, env=user_env()
    )
    await asyncio.sleep(0.5)  # journalctl is following
    ours: List[float] = []
    theirs: List[float] = []

    async def read_ws() -> None:
        while True:
            text = await ws.read_message()
            if text is None:
                return
            recv = time.time_ns() / 1e6
            msg = json.loads(text)
            for e in msg.get("entries", []):
                if e["message"].startswith("LAT "):
                    ours.append(recv - int(e["message"].split()[1]) / 1e6)

    async def read_jc() -> None:
        assert jc.stdout is not None
        while True:
            line = await jc.stdout.readline()
            if not line:
                return
            lat = parse_lat(line.decode(errors="replace"))
            if lat is not None:
                theirs.append(lat)

    tasks = [asyncio.ensure_future(read_ws()), asyncio.ensure_future(read_jc())]
    await server.api("POST", "services/lat/start")
    await asyncio.sleep(seconds)
    await server.api("POST", "services/lat/stop")
    await asyncio.sleep(0.5)
    ws.close()
    jc.terminate()
    await jc.wait()
    for t in tasks:
        t.cancel()
    return {"ours": ours, "journalctl": theirs}


async def phase_cpu(server: Server, k: int, seconds: float, rate: float) -> Dict[str, Any]:
    """Goal 2: server CPU while following K services logging ``rate`` lines/s each, minus the same without followers."""
    names = [f"cpu{i}" for i in range(k)]
    for n in names:
        await create(server, n, LAT_SCRIPT, [str(rate)])
        await server.api("POST", f"services/{n}/start")
    await asyncio.sleep(1.0)
    c0 = cpu_seconds(server.proc.pid)
    await asyncio.sleep(seconds)
    idle = (cpu_seconds(server.proc.pid) - c0) / seconds
    sockets = []
    received = [0]

    async def drain(ws: Any) -> None:
        while True:
            text = await ws.read_message()
            if text is None:
                return
            received[0] += len(json.loads(text).get("entries", []))

    for n in names:
        ws = await server.ws(f"/condasvc/api/services/{n}/logs/follow")
        sockets.append(ws)
    tasks = [asyncio.ensure_future(drain(ws)) for ws in sockets]
    await asyncio.sleep(1.0)
    c0 = cpu_seconds(server.proc.pid)
    await asyncio.sleep(seconds)
    busy = (cpu_seconds(server.proc.pid) - c0) / seconds
    for ws in sockets:
        ws.close()
    for t in tasks:
        t.cancel()
    for n in names:
        await server.api("POST", f"services/{n}/stop")
    return {
        "k": k,
        "rate": rate,
        "idle_frac": idle,
        "followed_frac": busy,
        "per_service_frac": max(0.0, busy - idle) / k,
        "received": received[0],
    }


async def phase_status(server: Server, cycles: int, sockets: int = 1) -> Dict[str, Any]:
    """Goal 3: systemctl start/stop; latency from StateChangeTimestamp to our socket and to a raw D-Bus subscriber."""
    from dbus_fast import Message, MessageType

    sys.path.insert(0, str(REPO))
    from jupyter_condasvc.systemd import unit_object_path

    await create(server, "flip", "", ["sleep", "600"], kind="command")
    unit = f"{server.prefix}flip.service"
    conns = [await server.ws("/condasvc/api/events") for _ in range(sockets)]
    for ws in conns:
        await ws.read_message()  # snapshot
    ours: List[float] = []
    raw: List[float] = []
    raw_seen: set = set()
    path = unit_object_path(unit)
    bus = await _common.subscribe(
        f"type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='{path}'"
    )

    def on_msg(msg: Message) -> None:
        if msg.message_type is MessageType.SIGNAL and msg.path == path and msg.member == "PropertiesChanged":
            changed = msg.body[1]
            if "StateChangeTimestamp" in changed and "ActiveState" in changed:
                key = (changed["StateChangeTimestamp"].value, changed["ActiveState"].value)
                if key[1] in ("active", "inactive") and key[0] and key not in raw_seen:
                    raw_seen.add(key)  # the first signal of each change, as for our socket
                    raw.append(time.time_ns() / 1e6 - key[0] / 1e3)

    bus.add_message_handler(on_msg)

    async def read_ws(ws: Any) -> None:
        seen_changes: set = set()  # each socket's first push of each change
        while True:
            text = await ws.read_message()
            if text is None:
                return
            recv = time.time_ns() / 1e6
            msg = json.loads(text)
            st = None
            if msg.get("type") == "service" and msg["service"]["name"] == "flip":
                st = msg["service"]["status"]
            elif msg.get("type") == "status" and msg["name"] == "flip":
                st = msg["status"]
            if st is not None:
                ts = st.get("state_change_timestamp")
                if st["active_state"] in ("active", "inactive") and ts and (ts, st["active_state"]) not in seen_changes:
                    seen_changes.add((ts, st["active_state"]))
                    from datetime import datetime

                    ours.append(recv - datetime.fromisoformat(ts).timestamp() * 1000)

    tasks = [asyncio.ensure_future(read_ws(ws)) for ws in conns]
    env = user_env()
    for _ in range(cycles):
        for verb in ("start", "stop"):
            p = await asyncio.create_subprocess_exec("systemctl", "--user", verb, unit, env=env)
            await p.wait()
            await asyncio.sleep(0.15)
    await asyncio.sleep(0.5)
    _, probe = await server.fetch("GET", "/condasvc-bench/probe")
    for task, ws in zip(tasks, conns):
        task.cancel()
        ws.close()
    bus.disconnect()
    return {"ours": ours, "dbus": raw, "probe": probe, "sockets": sockets}


async def phase_history(server: Server, reps: int) -> Dict[str, Any]:
    """Goal 4: last 1000 entries via the API (server time) vs journalctl -o json + parse."""
    await create(server, "bulk", BULK_SCRIPT)
    await server.api("POST", "services/bulk/start")
    unit = f"{server.prefix}bulk.service"
    for _ in range(100):
        page = await server.api("GET", "services/bulk/logs?n=5")
        if any(e["message"] == "BULK-END" for e in page["entries"]):
            break
        await asyncio.sleep(0.1)
    e2e, jc = [], []
    env = user_env()
    for i in range(reps):
        t = time.perf_counter()
        page = await server.api("GET", f"services/bulk/logs?n=1000&rep={i}")
        e2e.append((time.perf_counter() - t) * 1000)
        assert len(page["entries"]) == 1000, len(page["entries"])
        t = time.perf_counter()
        p = await asyncio.create_subprocess_exec(
            "journalctl",
            "--user",
            "-u",
            unit,
            "-n",
            "1000",
            "-o",
            "json",
            "--no-pager",
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        out, _ = await p.communicate()
        parsed = [json.loads(line) for line in out.splitlines()]
        jc.append((time.perf_counter() - t) * 1000)
        assert len(parsed) == 1000, len(parsed)
    server_ms = server.logged_ms("/condasvc/api/services/bulk/logs?n=1000&rep=")
    # the same page, with one new entry for the unit before each request: 999 entries cached, the page itself
    # read again (a service that is still logging); the entry is a USER_UNIT= line the bench sends itself
    fresh_e2e = []
    for i in range(reps):
        await asyncio.to_thread(_send_line, unit, f"HISTORY-NEW {i}")
        for _ in range(200):  # until journald has written it (a page of 1 is not the page timed below)
            last = await server.api("GET", f"services/bulk/logs?n=1&wait={i}")
            if last["entries"] and last["entries"][-1]["message"] == f"HISTORY-NEW {i}":
                break
            await asyncio.sleep(0.01)
        t = time.perf_counter()
        page = await server.api("GET", f"services/bulk/logs?n=1000&fresh={i}")
        fresh_e2e.append((time.perf_counter() - t) * 1000)
        assert page["entries"][-1]["message"] == f"HISTORY-NEW {i}", page["entries"][-1]
    fresh_ms = server.logged_ms("/condasvc/api/services/bulk/logs?n=1000&fresh=")
    for i in range(reps):  # a page of 200, as the panel asks for
        await server.api("GET", f"services/bulk/logs?n=200&page200={i}")
    page200 = server.logged_ms("/condasvc/api/services/bulk/logs?n=200&page200=")
    for i in range(reps):  # a page of one entry: what any history request costs besides its entries
        await server.api("GET", f"services/bulk/logs?n=1&page1={i}")
    page1 = server.logged_ms("/condasvc/api/services/bulk/logs?n=1&page1=")
    return {
        "server": server_ms,
        "e2e": e2e,
        "server_fresh": fresh_ms,
        "e2e_fresh": fresh_e2e,
        "journalctl": jc,
        "page200": page200,
        "page1": page1,
        "breakdown": await asyncio.to_thread(history_breakdown, unit, reps, "bulk"),
    }


def _send_line(unit: str, text: str) -> None:
    from systemd import journal as sd_journal

    sd_journal.send(text, USER_UNIT=unit)


#: What an entry's view reads (read_entry): the message, priority, pid, identifier, and the sender unit that
#: tells the service's own lines from the manager's and others'.
VIEW_FIELDS = ("MESSAGE", "PRIORITY", "_PID", "SYSLOG_IDENTIFIER", "_SYSTEMD_USER_UNIT")


def history_breakdown(unit: str, reps: int, name: str) -> Dict[str, Any]:
    """Where the time of 1000 entries goes, in this process with the package's own functions (p50 and min ms).

    Each step adds to the previous one: walk (open, match, seek, 1000 _previous); + cursor and
    timestamp per entry (what the entry cache is keyed by); + field extraction (read_entry: one
    _get_all per entry and the dict); + JSON (per entry, as the entry cache makes it); and, for
    comparison, the walk with one _get per field a view needs instead (reading only those fields). Then
    history_json() as the server calls it: cold (both caches emptied), entries cached but the page
    read again (page cache emptied), the page kept (its two checks and the kept body), and the
    kept page grown by one entry the unit logged since (what a panel on a service that keeps
    logging asks for).
    """
    sys.path.insert(0, str(REPO))
    from jupyter_condasvc import journal

    uid, n = os.getuid(), 1000
    to_json = getattr(journal, "entry_json", json.dumps)  # what the entry cache keeps (older revisions: json.dumps)
    # the server's matches: also the service's stdout lines whose unit journald lost (older revisions: none)
    import inspect

    kw: Dict[str, Any] = {"ident": name} if "ident" in inspect.signature(journal.open_reader).parameters else {}

    def walk(step: int) -> None:
        r = journal.open_reader(unit, uid, **kw)
        try:
            r.seek_tail()
            for _ in range(n):
                if not r._previous():
                    break
                if step >= 1:
                    r._get_cursor()
                    r._get_realtime()
                if step >= 2:
                    e = journal.read_entry(r, unit)
                    if step >= 3:
                        to_json(e)
                elif step == -2:  # read_entry's field read alone
                    r._get_all()
                elif step == -1:  # the alternative: one _get per field a view needs
                    for name in VIEW_FIELDS:
                        try:
                            r._get(name)
                        except KeyError:
                            pass
        finally:
            r.close()

    def med(f: Any) -> List[float]:
        """[p50, min]: on a shared machine the minimum shows the cost itself, the median what load adds."""
        xs = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            xs.append((time.perf_counter() - t) * 1000)
        return [statistics.median(xs), min(xs)]

    out: Dict[str, Any] = {}
    for step, name in enumerate(("walk", "+cursor,time", "+fields", "+json")):
        out[name] = med(functools.partial(walk, step))
    out["walk + _get_all (all fields, no dict)"] = med(functools.partial(walk, -2))
    out[f"walk + {len(VIEW_FIELDS)} x _get (only the view's fields, no dict)"] = med(functools.partial(walk, -1))
    q = journal.LogQuery.parse(lambda k: {"n": str(n)}.get(k))
    cache = getattr(journal, "ENTRY_CACHE", None)
    pages = getattr(journal, "PAGE_CACHE", None)
    if cache is not None:

        def cold() -> None:
            cache.clear()
            if pages is not None:
                pages.clear()
            journal.history_json(unit, uid, q, **kw)

        def entries_cached() -> None:
            if pages is not None:
                pages.clear()
            journal.history_json(unit, uid, q, **kw)

        out["history_json cold"] = med(cold)
        out["history_json entries cached" if pages is not None else "history_json warm"] = med(entries_cached)
        if pages is not None:
            out["history_json page kept"] = med(lambda: journal.history_json(unit, uid, q, **kw))
            # one new entry before each read (sent and waited for, not timed): the kept page grows by it
            q1, grown = journal.LogQuery.parse(lambda k: {"n": "1"}.get(k)), []
            for i in range(reps):
                _send_line(unit, f"BREAKDOWN-NEW {i}")
                for _ in range(500):
                    if journal.read_page(unit, uid, q1, **kw).entries[-1]["message"] == f"BREAKDOWN-NEW {i}":
                        break
                    time.sleep(0.005)
                t = time.perf_counter()
                journal.history_json(unit, uid, q, **kw)
                grown.append((time.perf_counter() - t) * 1000)
            out["history_json page grown by one new entry"] = [statistics.median(grown), min(grown)]
    else:  # a revision without the cache
        out["history+json.dumps"] = med(lambda: json.dumps(journal.history(unit, uid, q)))
    return out


async def phase_idle(server: Server, n: int, seconds: float) -> Dict[str, Any]:
    """Goal 5: ~n services running and logging, nobody connected: timers and server CPU."""
    for i in range(n):
        await create(server, f"idle{i}", "", ["sh", "-c", "while :; do echo idle; sleep 1; done"], kind="command")
    await asyncio.gather(*(server.api("POST", f"services/idle{i}/start") for i in range(n)))
    await asyncio.sleep(2.0)
    _, probe = await server.fetch("GET", "/condasvc-bench/probe")
    c0 = cpu_seconds(server.proc.pid)
    await asyncio.sleep(seconds)
    frac = (cpu_seconds(server.proc.pid) - c0) / seconds
    _, probe2 = await server.fetch("GET", "/condasvc-bench/probe")
    return {"n": n, "cpu_frac": frac, "probe": probe, "probe_after": probe2}


async def phase_flood(server: Server, seconds: float) -> Dict[str, Any]:
    """Goal 6: one service at max rate, one follower: kept up / dropped, memory, event-loop blocks."""
    await create(server, "flood", FLOOD_SCRIPT, [str(seconds)])
    ws = await server.ws("/condasvc/api/services/flood/logs/follow")
    await ws.read_message()
    _, p0 = await server.fetch("GET", "/condasvc-bench/probe")
    await server.fetch("POST", "/condasvc-bench/probe?lag=start")
    received = 0
    dropped = 0
    flood_end = None
    lat: List[float] = []
    ours_part: List[float] = []
    rss_max = p0["rss"]
    done = asyncio.Event()

    async def read_ws() -> None:
        nonlocal received, dropped, flood_end
        while True:
            text = await ws.read_message()
            if text is None:
                return
            recv = time.time_ns() / 1e6
            msg = json.loads(text)
            if msg["type"] == "dropped":
                dropped += msg["count"]
            for e in msg.get("entries", []):
                m = e["message"]
                if m.startswith("FLOOD "):
                    received += 1
                    if received % 50 == 0:
                        lat.append(recv - int(m.split()[2]) / 1e6)
                        ours_part.append(recv - e["realtime_usec"] / 1e3)  # journald stored it -> client
                elif m.startswith("FLOOD-END"):
                    flood_end = int(m.split()[1])
                    done.set()

    async def sample_rss() -> None:
        nonlocal rss_max
        while not done.is_set():
            _, p = await server.fetch("GET", "/condasvc-bench/probe?rss=1")
            rss_max = max(rss_max, p["rss"])
            await asyncio.sleep(1.0)

    task = asyncio.ensure_future(read_ws())
    sampler = asyncio.ensure_future(sample_rss())
    c0 = cpu_seconds(server.proc.pid)
    t0 = time.monotonic()
    await server.api("POST", "services/flood/start")
    try:
        await asyncio.wait_for(done.wait(), seconds + 5)  # FLOOD-END itself may be rate-limited away
    except asyncio.TimeoutError:
        pass
    unit = f"{server.prefix}flood.service"

    async def journal_count() -> int:
        p = await asyncio.create_subprocess_exec(
            "journalctl",
            "--user",
            "-u",
            unit,
            "-o",
            "cat",
            "--no-pager",
            stdout=asyncio.subprocess.PIPE,
            env=user_env(),
        )
        out, _ = await p.communicate()
        return sum(1 for line in out.splitlines() if line.startswith(b"FLOOD "))

    # journald may still be storing the stream's backlog: wait until the journal stops growing
    last = -1
    while True:
        n = await journal_count()
        if n == last:
            break
        last = n
        await asyncio.sleep(1.0)
    await asyncio.sleep(1.0)  # and the follower has read it
    wall = time.monotonic() - t0
    cpu = cpu_seconds(server.proc.pid) - c0
    await server.fetch("POST", "/condasvc-bench/probe?lag=stop")
    _, p1 = await server.fetch("GET", "/condasvc-bench/probe")
    ws.close()
    task.cancel()
    sampler.cancel()
    in_journal = await journal_count()
    return {
        "seconds": seconds,
        "written": flood_end,
        "in_journal": in_journal,
        "received": received,
        "dropped_reported": dropped,
        "latency": lat,
        "stored_to_client": ours_part,
        "rss_before": p0["rss"],
        "rss_max": rss_max,
        "lag": p1["lag"],
        "server_cpu_frac": cpu / wall,
    }


def make_conda_root(tmp: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from condaenv import make_conda_root as mk  # the tests' helper: a real conda layout

    return mk(tmp / "miniforge3", ["bench"])


def sweep(prefix: str) -> None:
    unit_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
    units = sorted(p.name for p in unit_dir.glob(f"{prefix}*"))
    env = user_env()
    if units:
        subprocess.run(["systemctl", "--user", "stop", *units], env=env, capture_output=True, timeout=120)
        for p in unit_dir.glob(f"{prefix}*"):
            p.unlink()
        for p in unit_dir.glob(f"*.wants/{prefix}*"):
            p.unlink()
    subprocess.run(["systemctl", "--user", "daemon-reload"], env=env, capture_output=True, timeout=60)
    subprocess.run(["systemctl", "--user", "reset-failed"], env=env, capture_output=True, timeout=60)


def ms(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    if not a or not b:
        return "-"
    return f"{b / a:.1f}x"


async def run(args: argparse.Namespace, tmp: Path) -> Dict[str, Any]:
    prefix = f"sb{secrets.token_hex(3)}-"
    say(f"conda-layout environment in {tmp}")
    conda = make_conda_root(tmp)
    server = Server(tmp, prefix, conda)
    results: Dict[str, Any] = {"prefix": prefix}
    try:
        await server.wait_ready()
        say(f"server on port {server.port}, unit prefix {prefix}")
        only = set(args.only.split(",")) if args.only else {"latency", "cpu", "status", "history", "idle", "flood"}
        if "latency" in only:
            say(f"1. latency: {args.lat_seconds:g} s at {args.lat_rate:g} lines/s, WebSocket and journalctl -f")
            results["latency"] = await phase_latency(server, args.lat_seconds, args.lat_rate)
        if "cpu" in only:
            say(f"2. CPU per followed service: {args.cpu_services} services at 20 lines/s")
            results["cpu"] = await phase_cpu(server, args.cpu_services, args.cpu_seconds, 20.0)
        if "status" in only:
            say(f"3. status: {args.cycles} start/stop cycles")
            results["status"] = await phase_status(server, args.cycles, args.status_sockets)
        if "history" in only:
            say("4. last 1000 entries")
            results["history"] = await phase_history(server, args.reps)
        if "idle" in only:
            say(f"5. idle: {args.idle_services} services, nobody watching, {args.idle_seconds:g} s")
            results["idle"] = await phase_idle(server, args.idle_services, args.idle_seconds)
            say("   stopping the idle services")
            env = user_env()
            subprocess.run(
                ["systemctl", "--user", "stop", *(f"{prefix}idle{i}.service" for i in range(args.idle_services))],
                env=env,
                capture_output=True,
                timeout=120,
            )
        if "flood" in only:
            duration = 60.0 if args.full else args.duration
            say(f"6. max-rate logging for {duration:g} s")
            results["flood"] = await phase_flood(server, duration)
    finally:
        server.stop()
        sweep(prefix)
    return results


def table(r: Dict[str, Any]) -> str:
    rows = [("measure", "ours", "anchor", "ratio (anchor/ours)", "goal")]
    for key, fn in (
        ("latency", _rows_latency),
        ("cpu", _rows_cpu),
        ("status", _rows_status),
        ("history", _rows_history),
        ("idle", _rows_idle),
        ("flood", _rows_flood),
    ):
        if key in r:
            fn(r, rows)
    widths = [max(len(str(row[k])) for row in rows) for k in range(5)]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) for row in rows)


def _rows_latency(r: Dict[str, Any], rows: List[Any]) -> None:
    lat = r["latency"]
    for q, goal in ((0.5, "<= 15 ms"), (0.95, "<= 30 ms")):
        a, b = pct(lat["ours"], q), pct(lat["journalctl"], q)
        rows.append(
            (
                f"log line -> client p{int(q * 100)} (n={len(lat['ours'])}/{len(lat['journalctl'])})",
                ms(a),
                f"journalctl -f {ms(b)}",
                ratio(a, b),
                goal,
            )
        )


def _rows_cpu(r: Dict[str, Any], rows: List[Any]) -> None:
    c = r["cpu"]
    rows.append(
        (
            f"server CPU per followed service ({c['k']} x {c['rate']:g} lines/s)",
            f"{100 * c['per_service_frac']:.2f} % core",
            f"not followed: {100 * c['idle_frac']:.2f} % total",
            "-",
            "<= 1 %",
        )
    )


def _rows_status(r: Dict[str, Any], rows: List[Any]) -> None:
    st = r["status"]
    a, b = pct(st["ours"], 0.95), pct(st["dbus"], 0.95)
    rows.append(
        (
            f"state change -> {st.get('sockets', 1)} status clients p95 (n={len(st['ours'])}/{len(st['dbus'])})",
            ms(a),
            f"raw D-Bus {ms(b)}",
            ratio(a, b),
            "<= 10 ms",
        )
    )
    rows.append(("  (p50)", ms(pct(st["ours"], 0.5)), f"raw D-Bus {ms(pct(st['dbus'], 0.5))}", "-", ""))
    if a is not None and b is not None:
        rows.append(("  p95 above the raw signal's p95", ms(a - b), "", "-", "<= 10 ms"))


def _rows_history(r: Dict[str, Any], rows: List[Any]) -> None:
    h = r["history"]
    a, b = pct(h["server"], 0.5), pct(h["journalctl"], 0.5)
    rows.append(
        (
            f"last 1000 entries, server p50 (n={len(h['server'])}, the same page again)",
            ms(a),
            f"journalctl -o json+parse {ms(b)}",
            ratio(a, b),
            "<= 10 ms",
        )
    )
    rows.append(("  (end to end via HTTP, p50)", ms(pct(h["e2e"], 0.5)), "", ratio(pct(h["e2e"], 0.5), b), ""))
    if h["server"]:
        rows.append(
            ("  first request (entries not yet cached), server", ms(h["server"][0]), "", ratio(h["server"][0], b), "")
        )
    if h.get("server_fresh"):
        f = pct(h["server_fresh"], 0.5)
        rows.append(
            (
                "  one new entry before each request, server p50",
                ms(f),
                "",
                ratio(f, b),
                "(the page changed)",
            )
        )
        rows.append(("  (end to end via HTTP, p50)", ms(pct(h["e2e_fresh"], 0.5)), "", "-", ""))
    if h.get("page200"):
        rows.append(
            (f"a page of 200, server p50 (n={len(h['page200'])})", ms(pct(h["page200"], 0.5)), "", "-", "<= 3 ms")
        )
    if h.get("page1"):
        rows.append(
            (
                f"a page of 1, server p50 (n={len(h['page1'])})",
                ms(pct(h["page1"], 0.5)),
                f"min {ms(min(h['page1']))}",
                "-",
                "(the request itself)",
            )
        )
    for step, (p50, low) in (h.get("breakdown") or {}).items():
        rows.append((f"  1000 entries in the bench process: {step} (p50, min)", ms(p50), f"min {ms(low)}", "-", ""))


def _rows_idle(r: Dict[str, Any], rows: List[Any]) -> None:
    i = r["idle"]
    pr = i["probe_after"]
    rows.append(
        (
            f"idle, {i['n']} services running, nobody watching",
            f"{100 * i['cpu_frac']:.2f} % core",
            f"follow timer {pr['follow_timer']}, followers {pr['followers']}, status timers {pr['status_timers']}",
            "-",
            "no timers, ~0",
        )
    )


def _rows_flood(r: Dict[str, Any], rows: List[Any]) -> None:
    f = r["flood"]
    rows.append(
        (
            f"max-rate {f['seconds']:g} s: written / in journal / received / reported dropped",
            f"{f['written']} / {f['in_journal']} / {f['received']} / {f['dropped_reported']}",
            "",
            "-",
            "keeps up or reports",
        )
    )
    rows.append(
        (
            "  event loop busy (server CPU between 2 ms probes): max, > 10 ms",
            f"{f['lag']['busy_max_ms']:.1f} ms, {f['lag']['busy_over_10ms']}",
            f"{f['lag']['samples']} probes",
            "-",
            "<= 10 ms",
        )
    )
    rows.append(
        (
            "  probe lateness (wall; includes not being scheduled): max, > 10 ms, p99",
            f"{f['lag']['max_ms']:.1f} ms, {f['lag']['over_10ms']}",
            f"p99 {f['lag']['p99_ms']:.2f} ms",
            "-",
            "",
        )
    )
    rows.append(
        (
            "  server anonymous RSS before -> max; server CPU",
            f"{f['rss_before'] / 2**20:.0f} -> {f['rss_max'] / 2**20:.0f} MiB",
            f"{100 * f['server_cpu_frac']:.0f} % core",
            "-",
            "bounded",
        )
    )
    rows.append(
        (
            "  line written -> client during flood p50/p95",
            f"{ms(pct(f['latency'], 0.5))} / {ms(pct(f['latency'], 0.95))}",
            "of which journald stored -> client:",
            "-",
            "",
        )
    )
    rows.append(
        (
            "  entry stored by journald -> client p50/p95",
            f"{ms(pct(f['stored_to_client'], 0.5))} / {ms(pct(f['stored_to_client'], 0.95))}",
            "",
            "-",
            "",
        )
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of max-rate logging (default 10)")
    ap.add_argument("--full", action="store_true", help="the documented full run: 60 s of max-rate logging")
    ap.add_argument("--lat-seconds", type=float, default=10.0)
    ap.add_argument("--lat-rate", type=float, default=20.0, help="lines per second of the latency service")
    ap.add_argument("--cpu-services", type=int, default=5)
    ap.add_argument("--cpu-seconds", type=float, default=5.0)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument(
        "--status-sockets", type=int, default=20, help="status (events) sockets receiving the pushes (default 20)"
    )
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--idle-services", type=int, default=50)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--only", default="", help="comma-separated phases: latency,cpu,status,history,idle,flood")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (server log)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(run(args, tmp))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        results = loop.run_until_complete(main_task)
    except asyncio.CancelledError:
        say("interrupted; services deleted")
        return 130
    finally:
        loop.close()
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
