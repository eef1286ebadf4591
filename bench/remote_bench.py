"""Issue 15: services on another host, the two designs measured against local, in one run.

Run as a user who reaches HOST with `ssh HOST` without a password (scripts/sshd-stack sets one up; see
bench/README.md for the exact command), with a Python that has jupyter_condasvc on both ends:

    python bench/remote_bench.py --host condasvc-remote --bridge "/var/tmp/h15/venv/bin/python -m jupyter_condasvc.bridge"

Designs (issue 15):
  (a) systemd's transport: the remote user manager's D-Bus over SSH plus remote `journalctl`. On
      systemd 252 (Debian 12) `systemctl --user -H HOST` answers "Cannot access user instance remotely"
      (checked first, printed); what remains of (a) is `ssh HOST systemctl --user show ...` and
      `ssh HOST journalctl --user -f`, each an ssh session over the same ControlMaster connection.
  (b) the bridge: `python -m jupyter_condasvc.bridge` on HOST, JSON lines over one ssh connection.

Measured (p50 / p95 over interleaved repetitions, so every mode sees the same machine load):
  list    50 services: local ServiceManager.list(); (b) RemoteHost.list() (asked now) and HostMirror.list()
          (last known, kept by the host's pushed status); (a) one `ssh HOST systemctl
          --user show` of the same 50 units (properties only: a lower bound for (a), which also needs
          the records)
  follow  log line to client: a remote service prints time.time_ns() every 50 ms; the delay to the line
          arriving at this process, through (b) RemoteHost.follow and (a) `ssh HOST journalctl --user -f`
          at the same time (same clock: same machine)
  change  a service's start/stop: act() called -> its status event at this process, local StatusHub vs
          the bridge's watch
  server  the same lists as the REST API answers them: GET condasvc/api/services?host=local, ?host=HOST (the
          server's mirror of HOST) and all hosts, from a real jupyter_server configured with HOST, on one
          keep-alive loopback connection, interleaved; the goal is the remote list within 2x of the local one
  outage  local list() p95 alone, and while a dead host (closed port) is dialled in a loop in the same
          event loop
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common

from jupyter_condasvc.cli import load_settings
from jupyter_condasvc.remote import HostError, RemoteHost


def server_lists(a, root, prefix, count):
    """GET services ?host=local, ?host=HOST and all hosts, interleaved, from a real ``python -m jupyter_server`` with
    this checkout's extension, configured with HOST (its bridge as --bridge), on a keep-alive loopback connection."""
    import http.client
    import secrets

    token = secrets.token_hex(16)
    port = _common.free_port()
    tmp = Path(tempfile.mkdtemp(prefix="remote-bench-server-"))
    config = {
        "ServerApp": {
            "port": port,
            "ip": "127.0.0.1",
            "open_browser": False,
            "root_dir": root,
            "jpserver_extensions": {"jupyter_condasvc": True},
        },
        "CondaSvcApp": {"unit_prefix": prefix, "hosts": [a.host], "host_bridge_command": a.bridge},
    }
    (tmp / "jupyter_server_config.json").write_text(json.dumps(config))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(_common.REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_TOKEN=token,
        JUPYTER_CONFIG_DIR=str(tmp),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
    )
    log = (tmp / "server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--config={tmp / 'jupyter_server_config.json'}"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    log.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"token {token}"}

    def get(path):
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def listed(query):
        t = time.perf_counter()
        status, body = get(f"/condasvc/api/services{query}")
        data = json.loads(body)
        return time.perf_counter() - t, status, data

    try:
        deadline = time.monotonic() + 120
        while True:  # up, then its mirror of HOST has every remote service
            assert proc.poll() is None and time.monotonic() < deadline, (tmp / "server.log").read_text()[-3000:]
            try:
                _, status, data = listed(f"?host={a.host}")
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                time.sleep(0.2)
                continue
            mine = [s for s in data.get("services", []) if s["name"].startswith(prefix) and not s.get("stale")]
            if status == 200 and len(mine) >= count:
                break
            time.sleep(0.2)
        out = {"local": [], "remote": [], "all": []}
        for q in ("?host=local", f"?host={a.host}", ""):  # warm
            listed(q)
        for _ in range(a.reps):
            for key, q in (("local", "?host=local"), ("remote", f"?host={a.host}"), ("all", "")):
                took, status, data = listed(q)
                assert status == 200 and len(data["services"]) >= count, (key, status)
                out[key].append(took)
        return out
    finally:
        conn.close()
        _common.stop_group(proc)
        subprocess.run(["rm", "-rf", str(tmp)])


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def fmt(values):
    return f"p50 {pct(values, 50) * 1000:8.2f} ms  p95 {pct(values, 95) * 1000:8.2f} ms  (n={len(values)})"


async def timed(aw):
    t = time.perf_counter()
    await aw
    return time.perf_counter() - t


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--bridge", required=True, help="the bridge command on HOST")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--outage-sec", type=float, default=5.0, help="seconds of local list() per outage phase")
    a = ap.parse_args()
    prefix = f"rb{uuid.uuid4().hex[:6]}-"
    remote_python = shlex.split(a.bridge)[0]
    remote_env = str(Path(remote_python).parent.parent)

    def ssh_argv(cmd):
        """``ssh HOST CMD`` over the bridge's shared connection (the baselines pay no handshake either)."""
        opts = ["BatchMode=yes", "ControlMaster=auto", f"ControlPath={host.control_dir}/%C"]
        return ["ssh", *(w for o in opts for w in ("-o", o)), a.host, cmd]

    def ssh(cmd, **kw):
        return subprocess.run(ssh_argv(cmd), capture_output=True, text=True, **kw)

    print(f"# remote_bench: {a.services} services per side, prefix {prefix}, host {a.host}")
    r = subprocess.run(["systemctl", "--user", "-H", a.host, "is-system-running"], capture_output=True, text=True)
    print(
        f"design (a) as systemd ships it: `systemctl --user -H {a.host}` -> exit {r.returncode}: "
        f"{(r.stdout + r.stderr).strip()}"
    )

    root = tempfile.mkdtemp(prefix="remote-bench-", dir=os.path.expanduser("~"))
    Path(root, "job.py").write_text("import time\ntime.sleep(3600)\n")
    settings = load_settings([f"--CondaSvcApp.unit_prefix={prefix}"])
    settings.log_level = "ERROR"
    local = settings.build_services(root)
    host = RemoteHost(a.host, bridge_command=a.bridge)
    names = [f"{prefix}s{i:02d}" for i in range(a.services)]
    remote_dir = f"{prefix}files"
    try:
        hello = await host.connect()
        print(f"bridge hello: {hello}")
        ssh(
            f"mkdir -p ~/{remote_dir} && printf 'import time\\ntime.sleep(3600)\\n' > ~/{remote_dir}/job.py", check=True
        )
        t = time.perf_counter()
        for i, n in enumerate(names):
            await local.create({"name": n, "kind": "script", "env": sys.prefix, "path": "job.py"})
            await host.create({"name": n, "kind": "script", "env": remote_env, "path": f"{remote_dir}/job.py"})
            if i % 5 < 4:  # most of them running, as in status_bench
                await local.act(n, "start")
                await host.act(n, "start")
        print(f"set-up: {2 * len(names)} services created in {time.perf_counter() - t:.1f} s")
        units = " ".join(f"{n}.service" for n in names)
        show = (
            f"systemctl --user show {units} -p Id,ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStatus,"
            "ActiveEnterTimestamp,MemoryCurrent"
        )

        # -- list ------------------------------------------------------------------
        await local.list(), await host.list()  # warm
        from jupyter_condasvc.remote import HostMirror

        mirror = HostMirror(host).start()
        while mirror.stale or len(mirror.services) < len(names):
            await asyncio.wait_for(mirror.changed(), 30)

        async def mirror_list():
            return mirror.list()

        t_local, t_bridge, t_sshctl, t_ping, t_mirror = [], [], [], [], []
        for _ in range(a.reps):
            t_local.append(await timed(local.list()))
            t_bridge.append(await timed(host.list()))
            t_ping.append(await timed(host.call("ping")))
            t_mirror.append(await timed(mirror_list()))
            t = time.perf_counter()
            out = await asyncio.create_subprocess_exec(*ssh_argv(show), stdout=asyncio.subprocess.PIPE)
            text, _ = await out.communicate()
            t_sshctl.append(time.perf_counter() - t)
            assert text.count(b"Id=") == len(names)
        n_listed = len([s for s in await host.list() if s["name"].startswith(prefix)])
        print(f"\n## list of {a.services} services ({n_listed} listed remotely)")
        print(f"local  ServiceManager.list()           {fmt(t_local)}")
        print(
            f"(b)    bridge RemoteHost.list()         {fmt(t_bridge)}   ratio to local p50 "
            f"{pct(t_bridge, 50) / pct(t_local, 50):.2f}x (goal <= 2x)"
        )
        await mirror.close()
        print(
            f"(b)    HostMirror.list(), last known    {fmt(t_mirror)}   ratio to local p50 "
            f"{pct(t_mirror, 50) / pct(t_local, 50):.3f}x (kept by the pushed status)"
        )
        size = len(json.dumps(await host.list()))
        print(f"(b)    bridge ping, transport alone     {fmt(t_ping)}; the list is {size / 1024:.0f} KiB of JSON")
        print(
            f"(a)    ssh HOST systemctl --user show   {fmt(t_sshctl)}   ratio to local p50 "
            f"{pct(t_sshctl, 50) / pct(t_local, 50):.2f}x"
        )

        # -- the same lists through the server: GET services?host=local / ?host=HOST (its mirror) / all --------
        t_http = await asyncio.to_thread(server_lists, a, root, prefix, len(names))
        print(f"\n## GET condasvc/api/services through a real server configured with {a.host} (e2e, JSON decoded)")
        local_p50 = pct(t_http["local"], 50)
        for key, label in (("local", "?host=local"), ("remote", f"?host={a.host} (mirror)"), ("all", "all hosts")):
            ratio = "" if key == "local" else f"   ratio to local p50 {pct(t_http[key], 50) / local_p50:.2f}x"
            goal = " (goal <= 2x)" if key == "remote" else ""
            print(f"GET services {label:<36}{fmt(t_http[key])}{ratio}{goal}")

        # -- follow ----------------------------------------------------------------
        ticker = f"{prefix}ticker"
        names.append(ticker)  # cleaned up with the rest, whatever happens
        ticker_py = f"import time\nfor i in range({a.lines}):\n    print(time.time_ns(), flush=True)\n    time.sleep(0.05)\nprint('end', flush=True)\n"
        ssh(f"cat > ~/{remote_dir}/ticker.py", input=ticker_py, check=True)
        await host.create(
            {"name": ticker, "kind": "script", "env": remote_env, "path": f"{remote_dir}/ticker.py", "restart": "no"}
        )
        got_bridge, got_jctl = {}, {}  # the line's timestamp -> its delay

        async def via_bridge():
            stream = host.follow(ticker)
            async for event in stream:
                if event.get("type") != "entries":
                    continue
                now = time.time_ns()
                for e in event["entries"]:
                    if e["message"].isdigit():
                        got_bridge[e["message"]] = (now - int(e["message"])) / 1e9
                if any(e["message"] == "end" for e in event["entries"]):
                    break
            await stream.aclose()

        async def via_journalctl():
            proc = await asyncio.create_subprocess_exec(
                *ssh_argv(f"journalctl --user -f -n 0 -o cat --user-unit {ticker}.service"),
                stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdout is not None
            try:
                while True:
                    line = await proc.stdout.readline()
                    if not line:
                        break
                    now = time.time_ns()
                    text = line.decode().strip()
                    if text.isdigit():
                        got_jctl[text] = (now - int(text)) / 1e9
                    elif text == "end":
                        break
            finally:
                proc.kill()
                await proc.wait()

        tasks = [asyncio.ensure_future(via_bridge()), asyncio.ensure_future(via_journalctl())]
        await asyncio.sleep(1.5)  # both followers in place
        await host.act(ticker, "start")
        done, pending = await asyncio.wait(tasks, timeout=60 + a.lines * 0.2)
        for t in pending:
            t.cancel()
        assert not pending, f"follow timed out: bridge got {len(got_bridge)} lines, journalctl {len(got_jctl)}"
        for t in done:
            t.result()
        both = sorted(set(got_bridge) & set(got_jctl))  # the lines both followers saw (journalctl may start late)
        lat_bridge = [got_bridge[k] for k in both]
        lat_jctl = [got_jctl[k] for k in both]
        print(
            f"\n## log line to client, remote follow ({len(both)} lines seen by both of {a.lines}; bridge saw "
            f"{len(got_bridge)}, journalctl {len(got_jctl)})"
        )
        print(f"(b)    bridge follow                    {fmt(lat_bridge)}")
        print(
            f"(a)    ssh HOST journalctl --user -f    {fmt(lat_jctl)}   bridge faster by "
            f"{pct(lat_jctl, 50) / pct(lat_bridge, 50):.1f}x at p50 (goal >= 5x)"
        )

        # -- state change to client -------------------------------------------------
        from jupyter_condasvc.status import StatusHub

        hub = StatusHub(local, local.systemd, log=settings.log)
        q_local: asyncio.Queue = asyncio.Queue()
        q_remote: asyncio.Queue = asyncio.Queue()
        watcher = await hub.connect(lambda text: q_local.put_nowait((time.perf_counter(), json.loads(text))))

        async def pump():
            async for event in host.watch():
                q_remote.put_nowait((time.perf_counter(), event))

        pumping = asyncio.ensure_future(pump())
        await asyncio.sleep(1.0)  # both snapshots in

        def state_in(event, name):
            if event.get("type") == "status" and event.get("name") == name:
                return event["status"]["active_state"]
            if event.get("type") == "service" and event["service"]["name"] == name:
                return event["service"]["status"]["active_state"]
            return None

        async def change(side, queue, name, action, want):
            while not queue.empty():
                queue.get_nowait()
            t0 = time.perf_counter()
            await side.act(name, action)
            while True:
                at, event = await asyncio.wait_for(queue.get(), 30)
                if state_in(event, name) in want:
                    return at - t0

        still = names[4]  # created, never started
        t_change_local, t_change_remote = [], []
        for _ in range(max(3, a.reps // 3)):
            for side, queue, out in ((local, q_local, t_change_local), (host, q_remote, t_change_remote)):
                out.append(await change(side, queue, still, "start", ("active",)))
                out.append(await change(side, queue, still, "stop", ("inactive", "failed")))
        pumping.cancel()
        hub.disconnect(watcher)
        hub.close()
        print("\n## state change to client (start and stop of a service: act() called -> its status event received)")
        print(f"local  StatusHub                        {fmt(t_change_local)}")
        print(
            f"(b)    bridge RemoteHost.watch()        {fmt(t_change_remote)}   ratio to local p50 "
            f"{pct(t_change_remote, 50) / pct(t_change_local, 50):.2f}x"
        )

        # -- a dead host and local requests ----------------------------------------
        dead_port = _common.free_port()

        def dead_host(**kw):
            return RemoteHost(
                "127.0.0.1", bridge_command=a.bridge, ssh_args=["-p", str(dead_port)], control_dir="", **kw
            )

        async def sample(seconds):
            out, end = [], time.monotonic() + seconds
            while time.monotonic() < end:
                out.append(await timed(local.list()))
                await asyncio.sleep(0.01)
            return out

        async def with_load(load):
            stop = asyncio.Event()
            task = asyncio.ensure_future(load(stop))
            try:
                return await sample(a.outage_sec)
            finally:
                stop.set()
                await task

        dials = {"product": 0, "hammer": 0}

        async def as_the_product(stop):
            # a follow of the dead host (it redials with the product's backoff) and a list of it every 100 ms
            dead = dead_host()

            async def follow():
                async for _event in dead.follow("x"):
                    pass

            f = asyncio.ensure_future(follow())
            while not stop.is_set():
                try:
                    await dead.list()
                except HostError:
                    pass
                await asyncio.sleep(0.1)
            f.cancel()
            dials["product"] = dead.state.failures
            await dead.close()

        async def hammer(stop):
            dead = dead_host(min_backoff=0.0, max_backoff=0.0)
            while not stop.is_set():
                try:
                    await dead.connect()
                except HostError:
                    dials["hammer"] += 1
            await dead.close()

        alone = await sample(a.outage_sec)
        product = await with_load(as_the_product)
        hammered = await with_load(hammer)
        print(f"\n## local list() while a host is down ({a.outage_sec:g} s each)")
        print(f"alone                                   {fmt(alone)}")
        print(
            f"dead host, product backoff              {fmt(product)}   p95 ratio {pct(product, 95) / pct(alone, 95):.2f}x"
            f"  ({dials['product']} dials: a follow redialling + a list every 100 ms)"
        )
        print(
            f"dead host dialled without backoff       {fmt(hammered)}   p95 ratio {pct(hammered, 95) / pct(alone, 95):.2f}x"
            f"  ({dials['hammer']} dials, ssh processes competing for the CPU)"
        )
    finally:
        for n in names:
            for side in (local, host) if n != f"{prefix}ticker" else (host,):
                try:
                    await side.delete(n)
                except Exception:  # noqa: BLE001 - best effort clean-up
                    pass
        await local.systemd.close()
        await host.close()
        ssh(f"rm -rf ~/{remote_dir}")
        subprocess.run(["rm", "-rf", root])
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
