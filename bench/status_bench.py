#!/usr/bin/env python3
"""Status of many services: jupyter_condasvc's API vs one batched ``systemctl --user show``.

Goal (issue 2): the server-side status of 50 services in at most 20 ms, and at
least 3x faster than one batched ``systemctl --user show`` of the same units.

What it does, against the *real* user manager of the user running it:

1. builds a conda-layout environment (tests/condaenv.py) in a temporary dir;
2. starts a real Jupyter server with the extension as a subprocess (own unit
   prefix ``bench<hex>-``, own state dir, token auth, loopback, DEBUG log);
3. creates N command services through the REST API and starts them: by
   default 40 running (``time.sleep``), 5 failed (exit 3), 5 never started;
4. measures, interleaved in one loop so all modes see the same machine load:

   e2e        ``GET condasvc/api/services`` from a loopback client on a
              keep-alive connection, response read and JSON-decoded;
   server     the same requests as the server saw them: tornado's
              ``request_time()`` that jupyter_server logs at DEBUG
              ("200 GET ... 12.34ms"), headers parsed to response finished;
              includes auth, handler, JSON encoding; excludes the network;
   in-process ``ServiceManager.list()`` awaited in this process, built from
              the package's classes with the server's configuration (its own
              D-Bus connection and signal-fed cache): the domain layer alone;
   systemctl  ONE ``systemctl --user show <N units> -p <10 properties>``
              subprocess per repetition, output parsed into dicts;

5. reports cold calls: the first call after ``systemctl --user daemon-reload``
   (systemd's Reloading signal empties the cache) and the first call of a
   freshly started server (D-Bus connect + subscribe + empty cache);
6. deletes every service through the API, stops the server, and sweeps any
   ``bench<hex>-*`` unit file still in the unit directory (also on Ctrl-C,
   SIGTERM or an exception).

Run it as an unprivileged user with a working ``systemctl --user``; see
bench/README.md for the exact command on the project's machines.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.client
import io
import json
import logging
import math
import os
import pstats
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import _common

REPO = Path(__file__).resolve().parent.parent
#: The package is copied here at start-up; the server and this process both
#: import the copy, so edits to the checkout during a run cannot mix versions.
CODE: Optional[Path] = None


def git(*args: str) -> str:
    return _common.git(*args).decode()


def load_code(dest: Path, rev: Optional[str]) -> str:
    """Snapshot jupyter_condasvc and tests/condaenv.py (working tree, or ``rev``) into ``dest``, import them."""
    global CODE, make_conda_root, EnvironmentFinder, Defaults, ServiceManager, ServiceStore, SystemdManager
    import hashlib

    _common.snapshot(dest, rev, extra=("tests/condaenv.py",))
    CODE = dest
    sys.path.insert(0, str(dest))
    from condaenv import make_conda_root
    from jupyter_condasvc.conda import EnvironmentFinder
    from jupyter_condasvc.services import Defaults, ServiceManager
    from jupyter_condasvc.store import ServiceStore
    from jupyter_condasvc.systemd import SystemdManager

    digest = hashlib.sha256()
    for f in sorted((dest / "jupyter_condasvc").rglob("*.py")):
        digest.update(f.relative_to(dest).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:12]


#: The properties the baseline asks for, as the issue states them.
SHOW_PROPERTIES = (
    "ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStatus,ExecMainCode,"
    "ActiveEnterTimestamp,MemoryCurrent,CPUUsageNSec"
)
GOAL_SERVER_MS = 20.0
GOAL_RATIO = 3.0
SERVICES_PATH = "/condasvc/api/services"
LOG_LINE = re.compile(
    r"\b200 GET /condasvc/api/services\?phase=(?P<phase>[a-z-]+)&i=(?P<i>\d+) \([^)]*\) (?P<ms>[0-9.]+)ms"
)


def say(*args: Any) -> None:
    print("status_bench:", *args, file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------


def summary(ms: Sequence[float]) -> Dict[str, Any]:
    if not ms:
        return {"n": 0}
    s = sorted(ms)

    def pct(p: float) -> float:  # nearest rank
        return s[max(0, math.ceil(p / 100 * len(s)) - 1)]

    return {
        "n": len(s),
        "p50": statistics.median(s),
        "p95": pct(95),
        "mean": statistics.fmean(s),
        "min": s[0],
        "max": s[-1],
    }


# -- the user manager, as a user would type it ---------------------------------


def systemctl(*args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, check=check, timeout=timeout)


def show_batched(units: Sequence[str]) -> List[Dict[str, str]]:
    """The baseline: one ``systemctl --user show`` of all units, parsed."""
    out = subprocess.run(
        ["systemctl", "--user", "show", *units, "-p", SHOW_PROPERTIES],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    blocks: List[Dict[str, str]] = []
    for block in out.split("\n\n"):
        props = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        if props:
            blocks.append(props)
    if len(blocks) != len(units):
        raise RuntimeError(f"systemctl show returned {len(blocks)} blocks for {len(units)} units")
    return blocks


# -- the server ----------------------------------------------------------------


free_port = _common.free_port


class Server:
    """A real ``python -m jupyter_server`` with the extension, in its own session."""

    def __init__(self, tmp: Path, config: Dict[str, Any], token: str) -> None:
        self.tmp = tmp
        self.config = config
        self.token = token
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.log_path = tmp / "server.log"
        self._local = threading.local()
        self.argv: List[str] = []
        #: Like a browser: each thread's first request logs in with the token,
        #: later ones send the login cookie it got (and an _xsrf cookie and header).
        self.cookie_session = False

    def start(self) -> None:
        self.port = free_port()
        cfg = json.loads(json.dumps(self.config))
        cfg["ServerApp"]["port"] = self.port
        cfg_dir = self.tmp / "jupyter-config"
        cfg_dir.mkdir(exist_ok=True)
        (cfg_dir / "jupyter_server_config.json").write_text(json.dumps(cfg, indent=1))
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(CODE), env.get("PYTHONPATH")])),
            JUPYTER_TOKEN=self.token,  # the token stays out of the process list
            JUPYTER_CONFIG_DIR=str(cfg_dir),  # no user config leaks in
            JUPYTER_RUNTIME_DIR=str(self.tmp / "jupyter-runtime"),
            JUPYTER_NO_CONFIG="",
        )
        self.argv = [sys.executable, "-m", "jupyter_server", f"--config={cfg_dir / 'jupyter_server_config.json'}"]
        log = self.log_path.open("ab")
        # Own session: a Ctrl-C in the terminal reaches the bench only, which
        # then deletes its services through this still-running server.
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see its log:\n{self.log_tail()}")
            try:
                status, _ = self.request("GET", "/api/status")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within 60 s; see its log:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "port", None) != self.port:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self._local.conn, self._local.port = conn, self.port
        return conn

    def request(self, method: str, path: str, body: Any = None) -> Tuple[int, bytes]:
        """One request on this thread's keep-alive connection (reconnects once)."""
        cookie = getattr(self._local, "cookie", None) if self.cookie_session else None
        if cookie:
            headers = {"Cookie": cookie}
            if method != "GET":
                headers["X-XSRFToken"] = self._local.xsrf
        else:
            headers = {"Authorization": f"token {self.token}"}
        data = None
        if body is not None or method in ("POST", "PATCH", "PUT"):
            data = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                if self.cookie_session and not cookie:
                    jar = [c.split(";", 1)[0] for c in resp.headers.get_all("Set-Cookie") or []]
                    if any(c.startswith("username-") for c in jar):
                        self._local.xsrf = secrets.token_hex(16)
                        self._local.cookie = "; ".join(
                            [c for c in jar if not c.startswith("_xsrf=")] + [f"_xsrf={self._local.xsrf}"]
                        )
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def api(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200, 201, 204)) -> Any:
        status, raw = self.request(method, SERVICES_PATH + path, body)
        if status not in ok:
            raise RuntimeError(f"{method} {SERVICES_PATH}{path} -> {status}: {raw.decode(errors='replace')[:500]}")
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        if self.proc is None:
            return
        _common.stop_group(self.proc)
        self.proc = None

    def logged_ms(self, phase: str) -> Dict[int, float]:
        """request_time of each ``GET services?phase=<phase>&i=<i>``, as the server logged it."""
        found: Dict[int, float] = {}
        for match in LOG_LINE.finditer(self.log_path.read_text(errors="replace")):
            if match["phase"] == phase:
                found[int(match["i"])] = float(match["ms"])
        return found


# -- the in-process ServiceManager ----------------------------------------------


class InProcess:
    """``ServiceManager.list()`` on an event loop in a thread, same config as the server."""

    def __init__(self, config: Dict[str, Any], root_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="inprocess-loop", daemon=True)
        self.thread.start()
        from traitlets.config import Config

        from jupyter_condasvc.app import CondaSvcApp

        # The server's own configuration, built the way the extension builds it.
        own = {k: dict(v) for k, v in config.items() if k != "ServerApp"}
        own["CondaSvcApp"].pop("log_level", None)  # the server's DEBUG is for its request log only
        app = CondaSvcApp(config=Config(own))
        app.log.setLevel(logging.WARNING)
        if hasattr(app, "build_services"):
            self.services = app.build_services(str(root_dir))
        else:  # revisions before CondaSvcApp.build_services
            c = config["CondaSvcApp"]
            finder = EnvironmentFinder(parent=app)
            store = ServiceStore(Path(c["unit_dir"]), Path(c["state_dir"]), c["unit_prefix"])
            defaults = Defaults(root_dir=os.path.realpath(root_dir))
            self.services = ServiceManager(SystemdManager(parent=app), finder, store, defaults, app.log)
        self.systemd = self.services.systemd
        self.calls: Counter = Counter()
        #: Signals the manager sent (by event): reloads and unit removals empty the cache.
        self.events: Counter = Counter()
        self.systemd.add_listener(lambda unit, event, data: self.events.update([event]))

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def timed_list(self) -> Tuple[float, List[Dict[str, Any]]]:
        async def once() -> Tuple[float, List[Dict[str, Any]]]:
            t0 = time.perf_counter()
            result = await self.services.list()
            return (time.perf_counter() - t0) * 1000, result

        return self.run(once())

    def count_calls(self) -> None:
        """Count D-Bus calls by member (wraps this instance's ``_raw_call``; product code untouched)."""
        original = self.systemd._raw_call

        async def counted(dest: str, path: str, iface: str, member: str, signature: str, body: list) -> list:
            key = (
                f"{member}({body[0].rsplit('.', 1)[-1]}.{body[1]})"
                if member == "Get"
                else (f"{member}({body[0].rsplit('.', 1)[-1]})" if member == "GetAll" else member)
            )
            self.calls[key] += 1
            return await original(dest, path, iface, member, signature, body)

        self.systemd._raw_call = counted  # type: ignore[method-assign]

    def profile(self, reps: int) -> str:
        async def many() -> str:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(reps):
                await self.services.list()
            prof.disable()
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
            return buf.getvalue()

        return self.run(many(), timeout=600)

    def breakdown(self, reps: int) -> Dict[str, Dict[str, Any]]:
        """Replays the steps of ``ServiceManager.list()`` one by one, timing each."""
        svc, sd = self.services, self.systemd

        async def once() -> Dict[str, float]:
            from jupyter_condasvc.serviceview import service_status, service_view

            t = [time.perf_counter()]
            await sd.connect()
            names = await svc.names()
            t.append(time.perf_counter())
            records = {n: await asyncio.to_thread(svc.store.require_ours, n) for n in names}
            t.append(time.perf_counter())
            units = [r.unit for r in records.values()]
            props = await sd.get_properties_many(units)
            t.append(time.perf_counter())
            await asyncio.gather(*(svc.describe(n, r, props=props[r.unit]) for n, r in records.items()))
            t.append(time.perf_counter())
            # Part of the step above, timed on its own.
            await asyncio.gather(*(svc._unsignalled(u, props[u]) for u in units))
            t.append(time.perf_counter())
            # What-if (NOT what list() does today): names and every record read in
            # ONE thread hop, cached properties, no MemoryCurrent/CPUUsageNSec Gets.
            recs = await asyncio.to_thread(lambda: {n: svc.store.require_ours(n) for n in svc.store.names()})
            props = await sd.get_properties_many([r.unit for r in recs.values()])
            [service_view(n, r, service_status(r.spec, props[r.unit], {}), []) for n, r in recs.items()]
            t.append(time.perf_counter())
            steps = (
                "names (1 to_thread)",
                "require_ours (1 to_thread per service)",
                "get_properties_many (cache)",
                "rest: per-service describe / usage + JSON",
                "  of which usage Gets alone (2 per active unit)",
                "what-if total: 1 to_thread for all records, no usage Gets",
            )
            return {k: (b - a) * 1000 for k, a, b in zip(steps, t, t[1:])}

        samples: Dict[str, List[float]] = {}
        for _ in range(reps):
            for k, v in self.run(once()).items():
                samples.setdefault(k, []).append(v)
        return {k: summary(v) for k, v in samples.items()}

    def close(self) -> None:
        async def shutdown() -> None:
            await self.systemd.close()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            self.run(shutdown(), timeout=10)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# -- set-up and clean-up ------------------------------------------------------------


def service_specs(n: int, failed: int, inactive: int, env: str) -> List[Tuple[Dict[str, Any], str]]:
    """(spec, role) pairs; role is running, failed or inactive."""
    running = n - failed - inactive
    if running < 0:
        raise SystemExit("--failed + --inactive exceeds --services")
    roles = ["running"] * running + ["failed"] * failed + ["inactive"] * inactive
    out = []
    for i, role in enumerate(roles):
        code = "import sys; sys.exit(3)" if role == "failed" else "import time; time.sleep(3600)"
        spec = {
            "name": f"s{i:03d}",
            "kind": "command",
            "env": env,
            "argv": ["python", "-c", code],
            "restart": "no",
            "description": f"status_bench {role} service {i}",
        }
        out.append((spec, role))
    return out


def create_retrying(server: Any, spec: Dict[str, Any], attempts: int = 5) -> None:
    """POST one service; a 503 (systemd 252's user manager drops calls in flight when the many creates'
    daemon-reloads pile up) is retried, and a create that got through before the 503 counts as done."""
    for attempt in range(attempts):
        status, raw = server.request("POST", SERVICES_PATH, spec)
        if status == 201:
            return
        if status != 503 or attempt == attempts - 1:
            raise RuntimeError(f"POST {SERVICES_PATH} -> {status}: {raw.decode(errors='replace')[:500]}")
        time.sleep(0.5)
        if server.request("GET", f"{SERVICES_PATH}/{spec['name']}")[0] == 200:
            return


def parallel(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 8) -> List[Any]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def sweep_units(unit_dir: Path, prefix: str) -> List[str]:
    """Stop, disable and remove every unit file of this run still on disk; returns what it found."""
    paths = sorted(unit_dir.glob(f"{prefix}*")) + sorted(unit_dir.glob(f"*.wants/{prefix}*"))
    if not paths:
        return []
    units = sorted({p.name for p in paths})
    systemctl("stop", "--", *units, timeout=120)
    systemctl("disable", "--", *units)
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    systemctl("daemon-reload")
    systemctl("reset-failed", "--", *units)
    return units


def wait_settled(units: Sequence[str], roles: Sequence[str], timeout: float = 60) -> None:
    want = {"running": "active", "failed": "failed", "inactive": "inactive"}
    deadline = time.monotonic() + timeout
    while True:
        states = [b["ActiveState"] for b in show_batched(units)]
        bad = [(u, s, want[r]) for u, s, r in zip(units, states, roles) if s != want[r]]
        if not bad:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"units did not settle: {bad[:5]}")
        time.sleep(0.2)


def disagreements(
    api_services: List[Dict[str, Any]], units: Sequence[str], shown_all: List[Dict[str, str]]
) -> List[str]:
    """What our answer says vs what systemctl says, for the fields both report."""
    by_unit = {s["unit"]: s["status"] for s in api_services}
    problems = []
    for unit, shown in zip(units, shown_all):
        st = by_unit.get(unit)
        if st is None:
            problems.append(f"{unit}: missing from the API")
            continue
        for api_key, key in (
            ("active_state", "ActiveState"),
            ("sub_state", "SubState"),
            ("result", "Result"),
            ("n_restarts", "NRestarts"),
            ("exec_main_status", "ExecMainStatus"),
        ):
            if str(st.get(api_key)) != shown.get(key):
                problems.append(f"{unit}: {api_key}={st.get(api_key)!r} but systemctl {key}={shown.get(key)!r}")
        if str(st.get("main_pid") or 0) != shown.get("MainPID"):
            problems.append(f"{unit}: main_pid={st.get('main_pid')!r} but systemctl MainPID={shown.get('MainPID')!r}")
    return problems


# -- the benchmark ------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> Dict[str, Any]:
    state = systemctl("is-system-running").stdout.strip()
    if state not in ("running", "degraded", "starting"):
        raise SystemExit(
            f"No systemd user manager answers for {os.getuid()} (systemctl --user is-system-running: {state!r}). "
            "See bench/README.md."
        )
    unit_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
    stale = sorted(p.name for p in unit_dir.glob("bench*")) if unit_dir.is_dir() else []
    if stale:
        say(
            f"note: {len(stale)} bench* unit file(s) of another (or a killed) run are in {unit_dir}, e.g. {stale[0]}; left alone"
        )

    prefix = f"bench{secrets.token_hex(3)}-"
    root_dir, state_dir = tmp / "root", tmp / "state"
    root_dir.mkdir()
    server: Optional[Server] = None
    inproc: Optional[InProcess] = None
    names: List[str] = []
    result: Dict[str, Any] = {}
    try:
        say(f"conda-layout env in {tmp}/conda; unit prefix {prefix}")
        conda_root = make_conda_root(tmp / "conda" / "miniforge3", ["bench"])
        config = {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_condasvc": True},
                "ip": "127.0.0.1",
                "port_retries": 0,
                "root_dir": str(root_dir),
                "open_browser": False,
                "log_level": "DEBUG",  # jupyter_server logs 2xx request times at DEBUG
            },
            # The extension's handlers log through the extension app's logger.
            "CondaSvcApp": {
                "unit_prefix": prefix,
                "unit_dir": str(unit_dir),
                "state_dir": str(state_dir),
                "log_level": "DEBUG",
            },
            "EnvironmentFinder": {"conda_roots": [str(conda_root)], "use_conda_executable": False},
        }
        server = Server(tmp, config, secrets.token_hex(24))
        server.start()
        say(f"server up on 127.0.0.1:{server.port} (pid {server.proc.pid}); log {server.log_path}")

        specs = service_specs(args.services, args.failed, args.inactive, "bench")
        t0 = time.perf_counter()
        # Names first, so the clean-up knows them even if a create is interrupted.
        names = [spec["name"] for spec, _ in specs]
        parallel(lambda sr: create_retrying(server, sr[0]), specs)
        t1 = time.perf_counter()
        to_start = [spec["name"] for spec, role in specs if role != "inactive"]
        parallel(lambda n: server.api("POST", f"/{n}/start", ok=(200, 409, 500)), to_start)
        t2 = time.perf_counter()
        units = [f"{prefix}{n}.service" for n in names]
        roles = [role for _, role in specs]
        wait_settled(units, roles)
        say(
            f"created {len(names)} services in {t1 - t0:.1f} s, started {len(to_start)} in {t2 - t1:.1f} s; "
            f"{roles.count('running')} running, {roles.count('failed')} failed, {roles.count('inactive')} inactive"
        )

        inproc = InProcess(config, root_dir)
        inproc.count_calls()

        def e2e(phase: str, i: int) -> Tuple[float, List[Dict[str, Any]]]:
            t = time.perf_counter()
            status, raw = server.request("GET", f"{SERVICES_PATH}?phase={phase}&i={i}")
            if status != 200:
                raise RuntimeError(f"GET services -> {status}: {raw[:300]!r}; server log:\n{server.log_tail(15)}")
            data = json.loads(raw)
            ms = (time.perf_counter() - t) * 1000
            if len(data["services"]) != len(names):
                raise RuntimeError(f"GET services listed {len(data['services'])} services, expected {len(names)}")
            return ms, data["services"]

        def baseline() -> Tuple[float, List[Dict[str, str]]]:
            t = time.perf_counter()
            shown = show_batched(units)
            return (time.perf_counter() - t) * 1000, shown

        # Cold: the first call after a daemon-reload (its Reloading signal empties both caches).
        cold_e2e, cold_inproc, cold_calls = [], [], []
        for i in range(args.cold_reps):
            systemctl("daemon-reload", check=True)
            time.sleep(0.3)  # let both processes receive the Reloading signal
            cold_e2e.append(e2e("cold", i)[0])
            before = sum(inproc.calls.values())
            cold_inproc.append(inproc.timed_list()[0])
            cold_calls.append(sum(inproc.calls.values()) - before)

        # Warm-up, then the interleaved measurement.
        for i in range(args.warmup):
            e2e("warmup", i)
            inproc.timed_list()
            baseline()
        samples: Dict[str, List[float]] = {"e2e": [], "inprocess": [], "systemctl": []}
        inproc.calls.clear()
        inproc.events.clear()
        last_api: List[Dict[str, Any]] = []
        disagree = {"e2e": 0, "inprocess": 0}
        for i in range(args.reps):
            ms, last_api = e2e("rep", i)
            samples["e2e"].append(ms)
            ms, in_list = inproc.timed_list()
            samples["inprocess"].append(ms)
            ms, shown = baseline()
            samples["systemctl"].append(ms)
            # The three answers, taken within milliseconds of each other, must agree on steady units.
            disagree["e2e"] += bool(disagreements(last_api, units, shown))
            disagree["inprocess"] += bool(disagreements(in_list, units, shown))
        calls_per_list = {k: v / args.reps for k, v in sorted(inproc.calls.items())}
        events = dict(inproc.events)
        problems = disagreements(last_api, units, show_batched(units))

        # The first call of a fresh server: connect, AddMatch, Subscribe, empty cache.
        server.stop()
        server.start()
        fresh_e2e = e2e("fresh", 0)[0]
        time.sleep(0.2)

        logged = server.logged_ms("rep")
        samples["server"] = [logged[i] for i in sorted(logged)]
        cold_server = server.logged_ms("cold")
        fresh_server = server.logged_ms("fresh").get(0)
        if len(samples["server"]) != args.reps:
            say(f"warning: found {len(samples['server'])} of {args.reps} request times in the server log")

        stats = {k: summary(v) for k, v in samples.items()}
        base = stats["systemctl"]
        ratios = {
            k: {"p50": base["p50"] / stats[k]["p50"], "mean": base["mean"] / stats[k]["mean"]}
            for k in ("e2e", "server", "inprocess")
            if stats[k].get("n")
        }
        srv = stats["server"]
        goals = {
            "server_p50_le_20ms": srv.get("p50", math.inf) <= GOAL_SERVER_MS,
            "server_p95_le_20ms": srv.get("p95", math.inf) <= GOAL_SERVER_MS,
            "ratio_p50_ge_3x": ratios.get("server", {}).get("p50", 0) >= GOAL_RATIO,
        }
        result = {
            "services": {
                "total": len(names),
                "running": roles.count("running"),
                "failed": roles.count("failed"),
                "inactive": roles.count("inactive"),
            },
            "reps": args.reps,
            "warmup": args.warmup,
            "stats_ms": stats,
            "ratios_systemctl_over": ratios,
            "cold_ms": {
                "after_daemon_reload": {
                    "e2e": cold_e2e,
                    "server": [cold_server.get(i) for i in range(args.cold_reps)],
                    "inprocess": cold_inproc,
                    "inprocess_dbus_calls": cold_calls,
                },
                "fresh_server_first_call": {"e2e": fresh_e2e, "server": fresh_server},
            },
            "dbus_calls_per_warm_list": calls_per_list,
            "services_with_usage": {
                "memory_current": sum(x["status"].get("memory_current") is not None for x in last_api),
                "cpu_usage_nsec": sum(x["status"].get("cpu_usage_nsec") is not None for x in last_api),
            },
            "signals_during_reps": events,
            "consistency_problems": problems,
            "reps_disagreeing_with_systemctl": disagree,
            "goals": goals,
            "host": {
                "cpus": os.cpu_count(),
                "loadavg_1m": os.getloadavg()[0],
                "python": sys.version.split()[0],
                "systemd": systemctl("--version").stdout.split("\n", 1)[0],
            },
        }
        if args.profile:
            result["breakdown_ms"] = inproc.breakdown(args.reps)
            result["profile"] = inproc.profile(args.reps)
        return result
    finally:
        # Clean-up must finish: a second Ctrl-C would leave units behind.
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if inproc is not None:
                inproc.close()
            if server is not None and server.alive and names:
                say(f"deleting {len(names)} services through the API")

                def delete(n: str) -> Optional[str]:
                    try:
                        server.api("DELETE", f"/{n}", ok=(204, 404))
                        return None
                    except Exception as exc:  # noqa: BLE001 - reported, then swept
                        return f"{n}: {exc}"

                failures = [f for f in parallel(delete, names) if f]
                for f in failures[:5]:
                    say(f"delete failed: {f}")
            if server is not None:
                server.stop()
            swept = sweep_units(unit_dir, prefix)
            if swept:
                say(f"swept {len(swept)} unit file(s) the API did not remove: {' '.join(swept[:5])}...")
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def fmt_table(result: Dict[str, Any]) -> str:
    s = result["stats_ms"]
    r = result["ratios_systemctl_over"]
    n = result["services"]
    rows = [
        ("e2e", f"GET {SERVICES_PATH}, loopback client, keep-alive, incl. JSON decode"),
        ("server", "server-side request time (jupyter_server's DEBUG request log)"),
        ("inprocess", "ServiceManager.list() in this process, same config"),
        ("systemctl", f"ONE systemctl --user show of {n['total']} units, incl. parsing"),
    ]
    out = [
        f"{n['total']} services ({n['running']} running, {n['failed']} failed, {n['inactive']} inactive); "
        f"{result['reps']} reps after {result['warmup']} warm-up, interleaved",
        "",
        f"{'mode':<10} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'min ms':>8} {'x faster (p50)':>15}  what",
    ]
    for key, what in rows:
        st = s[key]
        if not st.get("n"):
            out.append(f"{key:<10} {'n/a':>8}")
            continue
        ratio = f"{r[key]['p50']:.1f}x" if key in r else "baseline"
        out.append(
            f"{key:<10} {st['p50']:>8.2f} {st['p95']:>8.2f} {st['mean']:>8.2f} {st['min']:>8.2f} {ratio:>15}  {what}"
        )
    c = result["cold_ms"]
    ar = c["after_daemon_reload"]

    def lst(v: List[Optional[float]]) -> str:
        return ", ".join("?" if x is None else f"{x:.1f}" for x in v)

    out += [
        "",
        "cold (first call after `systemctl --user daemon-reload` emptied the cache), ms:",
        f"  e2e [{lst(ar['e2e'])}]  server [{lst(ar['server'])}]  inprocess [{lst(ar['inprocess'])}]"
        f"  (D-Bus calls: {ar['inprocess_dbus_calls']})",
        f"first call of a freshly started server (connect + subscribe + empty cache): e2e {c['fresh_server_first_call']['e2e']:.1f} ms, "
        f"server {c['fresh_server_first_call']['server'] or float('nan'):.1f} ms",
        "",
        "D-Bus calls per warm list(): "
        + (", ".join(f"{k} {v:g}" for k, v in result["dbus_calls_per_warm_list"].items()) or "none"),
        "services whose memory_current / cpu_usage_nsec the API filled: "
        f"{result['services_with_usage']['memory_current']} / {result['services_with_usage']['cpu_usage_nsec']} "
        "(null where the manager has no cgroup accounting)",
        "signals from the manager during the reps (a 'reloaded' empties the whole cache): "
        + (", ".join(f"{k} {v}" for k, v in sorted(result["signals_during_reps"].items())) or "none"),
        "reps whose answer disagreed with the same rep's systemctl show (state, result, PID, restarts): "
        + ", ".join(f"{k} {v}/{result['reps']}" for k, v in result["reps_disagreeing_with_systemctl"].items()),
        f"API vs systemctl at the end: {'agree' if not result['consistency_problems'] else result['consistency_problems'][:5]}",
        "",
        "goals (server-side = jupyter_server's request time):",
    ]
    g = result["goals"]
    out.append(
        f"  server-side p50 <= {GOAL_SERVER_MS:g} ms: {'MET' if g['server_p50_le_20ms'] else 'MISSED'} ({s['server'].get('p50', float('nan')):.2f} ms; "
        f"p95 {s['server'].get('p95', float('nan')):.2f} ms {'also' if g['server_p95_le_20ms'] else 'NOT'} within)"
    )
    out.append(
        f"  >= {GOAL_RATIO:g}x faster than batched systemctl show (p50): {'MET' if g['ratio_p50_ge_3x'] else 'MISSED'} "
        f"({r.get('server', {}).get('p50', 0):.1f}x)"
    )
    h = result["host"]
    code = result["code"]
    out.append(
        f"\ncode: {code['repo']}/jupyter_condasvc at {code['rev']}"
        + (" plus uncommitted changes" if code["working_tree_changes"] else "")
        + f" (snapshot sha256 {code['sha256_12']})"
    )
    out.append(f"host: {h['cpus']} CPUs, load {h['loadavg_1m']:.2f}, Python {h['python']}, {h['systemd']}")
    if "breakdown_ms" in result:
        out += ["", "list() step by step (replayed, ms): p50 / p95"]
        for k, v in result["breakdown_ms"].items():
            out.append(f"  {k:<58} {v['p50']:>7.2f} / {v['p95']:.2f}")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, default=50, help="services to create (default 50)")
    p.add_argument("--failed", type=int, default=5, help="of which started but exit 3 at once: failed (default 5)")
    p.add_argument("--inactive", type=int, default=5, help="of which never started (default 5)")
    p.add_argument("--reps", type=int, default=50, help="measured repetitions per mode (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="unmeasured repetitions first (default 5)")
    p.add_argument("--cold-reps", type=int, default=3, help="cold calls after a daemon-reload (default 3)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument(
        "--profile", action="store_true", help="also profile ServiceManager.list() (cProfile) and time its steps"
    )
    p.add_argument(
        "--rev", help="benchmark this git revision of jupyter_condasvc (git archive) instead of the working tree"
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary dir (server log, env)")
    args = p.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)

    def body(tmp: Path) -> Dict[str, Any]:
        code = load_code(tmp / "code", args.rev)
        try:
            head = git("rev-parse", "--short", args.rev or "HEAD").strip()
            dirty = not args.rev and bool(git("status", "--porcelain", "--", "jupyter_condasvc").strip())
        except (OSError, subprocess.SubprocessError):
            head, dirty = "?", None
        result = run(args, tmp)
        result["code"] = {"repo": str(REPO), "rev": head, "working_tree_changes": dirty, "sha256_12": code}
        return result

    result = _common.run_in_tmp("condasvc-bench-", args.keep_tmp, say, body)
    if result is None:
        return 130
    profile = result.pop("profile", None)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(fmt_table(result))
        if profile:
            print("\ncProfile of ServiceManager.list() (event-loop thread only):\n" + profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
