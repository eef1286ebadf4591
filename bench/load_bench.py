#!/usr/bin/env python3
"""Load: many services, log followers and API clients at once, against a real server.

Issue 7's load figure: 200 services, 20 concurrent log followers, 50 API
clients for 60 s on loopback: no errors, latencies reported, memory bounded.

What it does, against the *real* user manager of the user running it:

1. builds a conda-layout environment, starts a real Jupyter server with the
   extension (own unit prefix ``load<hex>-``, own state dir, token auth,
   127.0.0.1), creates N script services that print one numbered line a
   second, and starts them;
2. idle baseline: one client runs the request mix for a few seconds alone;
3. load, for ``--duration`` seconds, all at once:
   * ``--followers`` WebSockets on ``services/{name}/logs/follow`` (each
     checks its lines arrive in order, with no gap that a ``dropped`` message
     does not account for, and no duplicate);
   * one status WebSocket (``events``), counting pushes;
   * ``--clients`` HTTP clients on keep-alive connections, each looping over
     the mix: list all services, get one, its unit, a page of its log, the
     host report, and (1 in 20) a restart of one of 10 services set aside for it;
4. reports errors (any non-2xx, exception, or socket closed by the server),
   latency p50/p95/p99 per request kind and overall with the ratio load ÷ idle
   (p50), requests per second, follower lines and drops, and the server's RSS
   before, at peak (sampled each second) and after;
5. deletes every service through the API, stops the server, sweeps any unit
   file of this run (also on Ctrl-C or an exception).

Profiles: ``--quick`` (50 services, 15 s: the CI-sized run) and the default
full run (200 services, 60 s). See bench/README.md ("hardening").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import status_bench as sb

TICKER = "import time\ni = 0\nwhile True:\n    print('line', i, flush=True)\n    i += 1\n    time.sleep(1)\n"


def say(*args: Any) -> None:
    print("load_bench:", *args, file=sys.stderr, flush=True)


def pct(values: List[float], p: float) -> Optional[float]:
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))]


def stats(values: List[float]) -> Dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": max(values) if values else None,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str = "VmRSS") -> Optional[int]:
    """VmRSS, or RssAnon (the heap: not the journal files sd-journal maps, which count in RssFile)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def journal_rss_kib(pid: int) -> Optional[int]:
    """RSS of the journal files mapped in PID (sd-journal's readers; counted once per mapping)."""
    total, journal = 0, False
    try:
        with open(f"/proc/{pid}/smaps") as fh:
            for line in fh:
                head = line.split(maxsplit=6)
                if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    path = head[5].strip() if len(head) > 5 else ""
                    journal = path.endswith((".journal", ".journal~"))
                elif journal and head[0] == "Rss:":
                    total += int(head[1])
    except OSError:
        return None
    return total


class Mix:
    """The request mix of one API client."""

    def __init__(self, server: Any, names: List[str], restartable: List[str], seed: int) -> None:
        self.server = server
        self.names = names
        self.restartable = restartable
        self.rng = random.Random(seed)

    def one(self) -> tuple:
        r = self.rng.random()
        name = self.rng.choice(self.names)
        if r < 0.20:
            kind, method, path = "list", "GET", "/condasvc/api/services"
        elif r < 0.50:
            kind, method, path = "get", "GET", f"/condasvc/api/services/{name}"
        elif r < 0.65:
            kind, method, path = "unit", "GET", f"/condasvc/api/services/{name}/unit"
        elif r < 0.85:
            kind, method, path = "logs", "GET", f"/condasvc/api/services/{name}/logs?n=50"
        elif r < 0.95:
            kind, method, path = "host", "GET", "/condasvc/api/host"
        else:
            kind, method, path = (
                "restart",
                "POST",
                f"/condasvc/api/services/{self.rng.choice(self.restartable)}/restart",
            )
        t = time.perf_counter()
        status, raw = self.server.request(method, path, {} if method == "POST" else None)
        ms = (time.perf_counter() - t) * 1000
        if status == 200:
            json.loads(raw)
        return kind, ms, status, raw[:200]


def api_clients(
    server: Any, names: List[str], restartable: List[str], n: int, until: float, out: Dict[str, Any]
) -> List[threading.Thread]:
    lock = threading.Lock()

    def client(i: int) -> None:
        mix = Mix(server, names, restartable, i)
        while time.monotonic() < until:
            try:
                kind, ms, status, raw = mix.one()
            except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                with lock:
                    out["errors"].append(f"client {i}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                out["latency"].setdefault(kind, []).append(ms)
                if status != 200:
                    out["errors"].append(f"{kind} -> {status}: {raw!r}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


async def jobs(units: set, until: float, out: Dict[str, Any]) -> None:
    """systemd's own time for each job on UNITS: JobNew -> JobRemoved as a D-Bus subscriber in the bench sees them
    (what a restart's latency cannot go below; both signals reach this subscriber the same way)."""
    from dbus_fast import Message, MessageType

    manager = "org.freedesktop.systemd1.Manager"
    try:
        bus = await _common.subscribe(
            *(f"type='signal',interface='{manager}',member='{m}'" for m in ("JobNew", "JobRemoved"))
        )
    except Exception as exc:  # noqa: BLE001 - the figure is then missing, the run goes on
        out["errors"].append(f"job subscriber: {exc}")
        return
    started: Dict[str, float] = {}

    def on_msg(msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL or msg.interface != manager:
            return
        if msg.member == "JobNew" and msg.body[2] in units:
            started[msg.body[1]] = time.monotonic()
        elif msg.member == "JobRemoved" and msg.body[1] in started:
            out["job_ms"].append((time.monotonic() - started.pop(msg.body[1])) * 1000)

    bus.add_message_handler(on_msg)
    try:
        await asyncio.sleep(max(0.0, until - time.monotonic()))
    finally:
        bus.disconnect()


async def sockets(
    port: int, token: str, names: List[str], followers: int, until: float, out: Dict[str, Any], job_units: set
) -> None:
    from tornado.websocket import websocket_connect

    async def messages(url: str, what: str) -> AsyncIterator[Dict[str, Any]]:
        """The decoded messages of the socket at URL until UNTIL; its errors go to out["errors"] as WHAT's."""
        try:
            ws = await websocket_connect(url)
        except Exception as exc:  # noqa: BLE001
            out["errors"].append(f"{what}: {exc}")
            return
        try:
            while time.monotonic() < until:
                try:
                    text = await asyncio.wait_for(ws.read_message(), max(0.1, until - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if text is None:
                    out["errors"].append(f"{what}: closed by the server")
                    return
                yield json.loads(text)
        finally:
            ws.close()

    async def follow(name: str) -> None:
        url = f"ws://127.0.0.1:{port}/condasvc/api/services/{name}/logs/follow?token={token}"
        rec = {"name": name, "lines": 0, "dropped": 0, "gaps": 0, "duplicates": 0, "messages": 0}
        out["followers"].append(rec)
        last: Optional[int] = None
        seen = set()
        excused = False
        async for msg in messages(url, f"follow {name}"):
            rec["messages"] += 1
            if msg["type"] == "dropped":
                rec["dropped"] += msg["count"]
                excused = True
            elif msg["type"] == "entries":
                for e in msg["entries"]:
                    if e["cursor"] in seen:
                        rec["duplicates"] += 1
                    seen.add(e["cursor"])
                    words = e["message"].split()
                    if e.get("source") != "service" or len(words) != 2 or words[0] != "line":
                        continue
                    i = int(words[1])
                    rec["lines"] += 1
                    if last is not None and i != last + 1 and not excused:
                        rec["gaps"] += 1
                    last, excused = i, False
            elif msg["type"] == "error":
                out["errors"].append(f"follow {name}: {msg}")

    async def events() -> None:
        async for msg in messages(f"ws://127.0.0.1:{port}/condasvc/api/events?token={token}", "events"):
            kind = msg["type"]
            out["pushes"][kind] = out["pushes"].get(kind, 0) + 1

    await asyncio.gather(events(), jobs(job_units, until, out), *(follow(n) for n in names[:followers]))


def request_mix_alone(server: Any, names: List[str], restartable: List[str], seconds: float) -> Dict[str, List[float]]:
    mix = Mix(server, names, restartable, 12345)
    lat: Dict[str, List[float]] = {}
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        kind, ms, status, raw = mix.one()
        if status != 200:
            raise RuntimeError(f"idle {kind} -> {status}: {raw!r}")
        lat.setdefault(kind, []).append(ms)
    return lat


def run(args: argparse.Namespace, tmp: Path) -> Dict[str, Any]:
    state = sb.systemctl("is-system-running").stdout.strip()
    if state not in ("running", "degraded", "starting"):
        raise SystemExit(f"No systemd user manager answers (systemctl --user is-system-running: {state!r}).")
    unit_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
    prefix = f"load{secrets.token_hex(3)}-"
    root_dir, state_dir = tmp / "root", tmp / "state"
    root_dir.mkdir()
    server: Optional[sb.Server] = None
    names: List[str] = []
    try:
        conda_root = sb.make_conda_root(tmp / "conda" / "miniforge3", ["load"])
        config = {
            # stream_bench: its probe extension times the event loop (2 ms sleeps) during the load
            "ServerApp": {
                "jpserver_extensions": {"jupyter_condasvc": True, "stream_bench": True},
                "ip": "127.0.0.1",
                "port_retries": 0,
                "root_dir": str(root_dir),
                "open_browser": False,
                "log_level": "WARN",
            },
            "CondaSvcApp": {
                "unit_prefix": prefix,
                "unit_dir": str(unit_dir),
                "state_dir": str(state_dir),
                "log_level": "WARN",
            },
            "EnvironmentFinder": {"conda_roots": [str(conda_root)], "use_conda_executable": False},
        }
        server = sb.Server(tmp, config, secrets.token_hex(24))
        server.start()
        say(f"server up on 127.0.0.1:{server.port} (pid {server.proc.pid}); unit prefix {prefix}")
        names = [f"s{i:03d}" for i in range(args.services)]
        t0 = time.perf_counter()
        (root_dir / "ticker.py").write_text(TICKER)
        restartable = names[-10:]
        # restarts count against the start limit (5 in 60 s by default): none for the restarted ones
        sb.parallel(
            lambda n: sb.create_retrying(
                server,
                {
                    "name": n,
                    "kind": "script",
                    "env": "load",
                    "restart": "no",
                    "path": "ticker.py",
                    **({"start_limit_interval_sec": 0} if n in restartable else {}),
                },
            ),
            names,
        )
        # --running K: only the first K (and the restarted ones) run; the rest are listed, read, never started
        running = names if args.running is None else names[: max(args.running, args.followers, 1)] + restartable
        sb.parallel(lambda n: server.api("POST", f"/{n}/start"), sorted(set(running)))
        say(f"created {len(names)} services and started {len(set(running))} in {time.perf_counter() - t0:.1f} s")
        time.sleep(2)
        rss_before = rss_kib(server.proc.pid)

        idle = request_mix_alone(server, names, restartable, args.idle)
        say(f"idle: {sum(map(len, idle.values()))} requests in {args.idle:g} s")

        out: Dict[str, Any] = {"errors": [], "latency": {}, "followers": [], "pushes": {}, "job_ms": []}
        until = time.monotonic() + args.duration
        rss_peak = rss_before or 0
        anon_before = rss_kib(server.proc.pid, "RssAnon")
        anon_peak = anon_before or 0
        loop = asyncio.new_event_loop()
        sock_thread = threading.Thread(
            target=lambda: loop.run_until_complete(
                sockets(
                    server.port,
                    server.token,
                    names,
                    args.followers,
                    until + 1,
                    out,
                    {f"{prefix}{n}.service" for n in restartable},
                )
            ),
            daemon=True,
        )
        sock_thread.start()
        time.sleep(0.5)  # followers connected before the clients start
        server.request("POST", "/condasvc-bench/probe?lag=start")
        t_load = time.monotonic()
        # the user manager: the parent of a running service's main process (one that is between two runs has none)
        first = next(p for n in running if (p := server.api("GET", f"/{n}")["status"]["main_pid"]))
        manager_pid = int(Path(f"/proc/{first}/stat").read_text().rsplit(")", 1)[1].split()[1])
        dbus_pid = int(sb.systemctl("show", "-p", "MainPID", "--value", "dbus.service").stdout.strip() or 0)
        others = {"systemd_user_manager": manager_pid, "dbus_daemon": dbus_pid}
        others0 = {k: cpu_seconds(v) for k, v in others.items() if v}
        cpu0, own0 = cpu_seconds(server.proc.pid), time.process_time()
        server.cookie_session = args.session == "cookie"
        threads = api_clients(server, names, restartable, args.clients, until, out)
        journal_at_peak = journal_peak = 0
        while time.monotonic() < until:
            time.sleep(1)
            rss_now = rss_kib(server.proc.pid) or 0
            journal_now = journal_rss_kib(server.proc.pid) or 0
            journal_peak = max(journal_peak, journal_now)
            if rss_now > rss_peak:
                rss_peak, journal_at_peak = rss_now, journal_now
            anon_peak = max(anon_peak, rss_kib(server.proc.pid, "RssAnon") or 0)
        for t in threads:
            t.join(150)
        elapsed = time.monotonic() - t_load
        server_cpu = (cpu_seconds(server.proc.pid) - cpu0) / elapsed
        bench_cpu = (time.process_time() - own0) / elapsed
        others_cpu = {k: (cpu_seconds(others[k]) - v) / elapsed for k, v in others0.items()}
        load_avg = os.getloadavg()[0]
        sock_thread.join(30)
        _, raw_probe = server.request("GET", "/condasvc-bench/probe")
        server.request("POST", "/condasvc-bench/probe?lag=stop")
        stall = json.loads(raw_probe)["lag"]
        time.sleep(1)
        rss_after = rss_kib(server.proc.pid)

        all_load = [ms for v in out["latency"].values() for ms in v]
        all_idle = [ms for v in idle.values() for ms in v]
        followers = out["followers"]
        result = {
            "services": len(names),
            "running": len(set(running)),
            "duration_s": args.duration,
            "clients": args.clients,
            "followers": args.followers,
            "requests": len(all_load),
            "requests_per_s": len(all_load) / elapsed if elapsed else None,
            "errors": len(out["errors"]),
            "error_samples": out["errors"][:10],
            "latency_ms": {"all": stats(all_load), **{k: stats(v) for k, v in sorted(out["latency"].items())}},
            "idle_latency_ms": {"all": stats(all_idle), **{k: stats(v) for k, v in sorted(idle.items())}},
            "follow": {
                "connected": len(followers),
                "lines": sum(f["lines"] for f in followers),
                "dropped": sum(f["dropped"] for f in followers),
                "gaps": sum(f["gaps"] for f in followers),
                "duplicates": sum(f["duplicates"] for f in followers),
                "min_lines_per_follower": min((f["lines"] for f in followers), default=0),
            },
            "status_pushes": out["pushes"],
            "restart_job_ms": stats(out["job_ms"]),
            "event_loop": {
                "probes": stall["samples"],
                "longest_stall_ms": stall["max_ms"],
                "p99_stall_ms": stall["p99_ms"],
                "stalls_over_10ms": stall["over_10ms"],
                "longest_busy_ms": stall["busy_max_ms"],
                "busy_over_10ms": stall["busy_over_10ms"],
            },
            "server_rss_kib": {
                "before": rss_before,
                "peak": rss_peak,
                "after": rss_after,
                "anon_before": anon_before,
                "anon_peak": anon_peak,
                "journal_files_at_peak": journal_at_peak,
                "journal_files_max": journal_peak,
            },
            "cpu_cores_used": {
                "server": server_cpu,
                "bench_clients": bench_cpu,
                **others_cpu,
                "machine_cores": os.cpu_count(),
                "load_average_1min": load_avg,
            },
        }
        p50_load, p50_idle = result["latency_ms"]["all"]["p50"], result["idle_latency_ms"]["all"]["p50"]
        result["ratio_p50_load_over_idle"] = p50_load / p50_idle if p50_load and p50_idle else None
        # the figure that depends least on how much of a core this shared machine gave the server
        result["server_cpu_ms_per_request"] = server_cpu * elapsed * 1000 / len(all_load) if all_load else None
        return result
    finally:
        if server is not None and server.alive and names:
            say("deleting services")
            try:
                sb.parallel(lambda n: server.api("DELETE", f"/{n}", ok=(204, 404)), names)
            except Exception as exc:  # noqa: BLE001 - the sweep below removes what is left
                say(f"delete through the API failed: {exc}")
        if server is not None:
            server.stop()
        left = sb.sweep_units(unit_dir, prefix)
        if left:
            say(f"swept {len(left)} unit file(s) of this run")


def fmt(r: Dict[str, Any]) -> str:
    def ms(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [
        f"load: {r['services']} services ({r.get('running', r['services'])} running), {r['followers']} log followers, "
        f"{r['clients']} API clients, "
        f"{r['duration_s']:g} s on loopback",
        f"requests: {r['requests']} ({r['requests_per_s']:.0f}/s); errors: {r['errors']}; server CPU per request: "
        + (f"{r['server_cpu_ms_per_request']:.2f} ms" if r.get("server_cpu_ms_per_request") else "-"),
        "",
        f"{'kind':<9}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   idle p50   load/idle",
    ]
    for kind, s in r["latency_ms"].items():
        idle = r["idle_latency_ms"].get(kind, {})
        ratio = f"{s['p50'] / idle['p50']:.1f}x" if idle.get("p50") and s.get("p50") else "-"
        lines.append(
            f"{kind:<9}{s['n']:>7}{ms(s['p50']):>9}{ms(s['p95']):>9}{ms(s['p99']):>9}{ms(s['max']):>9}"
            f"{ms(idle.get('p50')):>11}{ratio:>12}"
        )
    f = r["follow"]
    rss = r["server_rss_kib"]
    lines += [
        "(milliseconds, loopback client, response read and JSON-decoded)",
        "",
        f"log followers: {f['connected']} connected, {f['lines']} lines (at least {f['min_lines_per_follower']} each), "
        f"{f['dropped']} dropped (told), {f['gaps']} unexplained gaps, {f['duplicates']} duplicates",
        f"status pushes: {r['status_pushes']}",
        "systemd's own time per restart job (JobNew -> JobRemoved, bench's D-Bus subscriber): "
        + (
            "n {n}, p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max:.1f} ms".format(**r["restart_job_ms"])
            if r.get("restart_job_ms", {}).get("n")
            else "-"
        ),
        "event loop (2 ms probe in the server): longest stall {:.1f} ms, p99 {:.1f} ms, {} over 10 ms; "
        "longest busy stretch (server CPU between probes) {:.1f} ms".format(
            r["event_loop"]["longest_stall_ms"] or 0,
            r["event_loop"]["p99_stall_ms"] or 0,
            r["event_loop"]["stalls_over_10ms"],
            r["event_loop"]["longest_busy_ms"] or 0,
        ),
        f"server RSS: {rss['before'] / 1024:.0f} MiB before, {rss['peak'] / 1024:.0f} MiB peak, "
        f"{rss['after'] / 1024:.0f} MiB after (of which the heap, RssAnon: {(rss.get('anon_before') or 0) / 1024:.0f} MiB "
        f"before, {(rss.get('anon_peak') or 0) / 1024:.0f} MiB peak; mapped journal files: "
        f"{(rss.get('journal_files_at_peak') or 0) / 1024:.0f} MiB at the peak, "
        f"{(rss.get('journal_files_max') or 0) / 1024:.0f} MiB at most)",
        "CPU under load (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_cores_used"].items()),
    ]
    if r["error_samples"]:
        lines += ["", "first errors:", *("  " + e for e in r["error_samples"])]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the CI-sized profile: 50 services, 15 s")
    p.add_argument(
        "--large",
        action="store_true",
        help="the 1,000-service profile: 1000 services of which 100 run (--running), 60 s",
    )
    p.add_argument("--services", type=int, help="services (default 200; --quick 50; --large 1000)")
    p.add_argument(
        "--running", type=int, help="start only this many (plus the 10 restarted ones); default all (--large 100)"
    )
    p.add_argument("--duration", type=float, help="seconds under load (default 60; --quick 15)")
    p.add_argument("--followers", type=int, default=20, help="log-follow WebSockets (default 20)")
    p.add_argument("--clients", type=int, default=50, help="concurrent API clients (default 50)")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of the idle baseline (default 3)")
    p.add_argument(
        "--session",
        choices=("token", "cookie"),
        default="token",
        help="how the API clients authenticate under load: the token on every request (default), or "
        "like a browser, the login cookie the first token request got (plus _xsrf for POSTs)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument(
        "--rev", help="benchmark this git revision of jupyter_condasvc (git archive) instead of the working tree"
    )
    args = p.parse_args(argv)
    args.services = args.services or (50 if args.quick else 1000 if args.large else 200)
    if args.large and args.running is None:
        args.running = 100
    args.duration = args.duration or (15.0 if args.quick else 60.0)

    logging.basicConfig(level=logging.WARNING)

    def body(tmp: Path) -> Dict[str, Any]:
        sb.load_code(tmp / "code", args.rev)
        for probe in ("stream_bench.py", "_common.py"):  # the probe, and what it imports
            shutil.copy2(Path(__file__).resolve().parent / probe, tmp / "code" / probe)
        return run(args, tmp)

    result = _common.run_in_tmp("condasvc-load-", args.keep_tmp, say, body)
    if result is None:
        return 130
    print(json.dumps(result, indent=1) if args.json else fmt(result))
    f = result["follow"]
    return 0 if result["errors"] == 0 and f["gaps"] == 0 and f["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
