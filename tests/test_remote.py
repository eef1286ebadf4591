"""Services on another host over SSH (issue 15): the bridge and its client, against a real sshd.

Needs what ``scripts/test`` sets up as root (``scripts/sshd-stack``): Debian's sshd on 127.0.0.1 for a second
account with its own user manager and journald files, fresh keys, and an alias in the test user's
~/.ssh/config (``CONDASVC_SSH_HOST``); ``CONDASVC_SSH_PYTHON`` is a Python with jupyter_condasvc that the
remote account can run; ``CONDASVC_ROOT_HELPER`` stops and starts that sshd. Without them the tests skip.
Nothing here is mocked: ssh, sshd, the remote user manager and its journal are the real ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from helpers import REAL_HOME, create, free_port
from jupyter_condasvc.remote import HostError, HostMirror, RemoteError, RemoteHost, classify

HOST = os.environ.get("CONDASVC_SSH_HOST", "")
PYTHON = os.environ.get("CONDASVC_SSH_PYTHON", "")
BRIDGE = f"{PYTHON} -m jupyter_condasvc.bridge"
#: Unique per run: this run's remote services, and only them, are cleaned up at the end.
RPREFIX = f"rt{uuid.uuid4().hex[:6]}-"
pytestmark = pytest.mark.systemd


def ssh(
    command: str, *, check: bool = True, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess:
    """A plain `ssh HOST command`, as the user would type it (test set-up and inspection only)."""
    return subprocess.run(
        ["ssh", "-o", "BatchMode=yes", HOST, command],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        input=input,
    )


@pytest.fixture(scope="module")
def remote_home():
    if not HOST or not PYTHON:
        pytest.skip(
            "needs an sshd for a second account: scripts/test sets CONDASVC_SSH_HOST and CONDASVC_SSH_PYTHON "
            "in root mode (scripts/sshd-stack)"
        )
    r = ssh("echo $HOME", check=False, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"`ssh {HOST}` does not work here: {r.stderr.strip()}")
    home = r.stdout.strip()
    yield home
    remove_this_runs_services()
    ssh(f"rm -rf ~/{RPREFIX}files", check=False)


def remove_this_runs_services() -> None:
    """Whatever a test left on the remote host (units, records), this run's only."""
    names = ssh(
        f"ls ~/.local/share/jupyter_condasvc/records 2>/dev/null | sed -n 's/^\\({RPREFIX}[^.]*\\)\\.json$/\\1/p'",
        check=False,
    ).stdout.split()
    for name in names:
        ssh(f"{shlex.quote(PYTHON)} -m jupyter_condasvc delete {shlex.quote(name)} -q", check=False)


@pytest.fixture(autouse=True)
def _no_leftovers_between_tests(request):
    """A failed test's remote services go with it, so CI's one rerun of it (or the next test) starts clean."""
    yield
    if HOST and PYTHON and "remote_home" in request.fixturenames:
        remove_this_runs_services()


def put(name: str, text: str) -> str:
    """Write a file on the remote host (over ssh's stdin); its path relative to the remote home."""
    rel = f"{RPREFIX}files/{name}"
    ssh(f"mkdir -p ~/{RPREFIX}files && cat > ~/{rel}", input=text)
    return rel


def client(**kw) -> RemoteHost:
    return RemoteHost(HOST, bridge_command=BRIDGE, **kw)


def env_prefix() -> str:
    return str(Path(PYTHON).parent.parent)


TICKER = textwrap.dedent("""\
    import hashlib, itertools, os, time
    token = os.environ.get("API_TOKEN", "")
    print("token sha", hashlib.sha256(token.encode()).hexdigest()[:12], flush=True)
    for i in itertools.count():
        print("tick", i, flush=True)
        time.sleep(0.05)
""")


async def collect(stream, until, timeout=60.0):
    """Entries from a follow until ``until(messages)`` holds; every non-entries event is kept too."""
    messages, events = [], []
    deadline = time.monotonic() + timeout
    while not until(messages):
        left = deadline - time.monotonic()
        assert left > 0, f"not there within {timeout} s: {messages[-5:]} events {events}"
        event = await asyncio.wait_for(stream.__anext__(), left)
        if event.get("type") == "entries":
            messages += [e["message"] for e in event["entries"]]
        else:
            events.append(event)
    return messages, events


async def mirrored(mirror, predicate, timeout=60.0):
    """Wait until the mirror satisfies ``predicate`` (checked after every message it applies)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        assert left > 0, f"mirror never got there: stale={mirror.stale} error={mirror.error} {sorted(mirror.services)}"
        try:
            await asyncio.wait_for(mirror.changed(), left)
        except asyncio.TimeoutError:
            pass


def ticks(messages):
    return [int(m.split()[1]) for m in messages if m.startswith("tick ")]


async def test_remote_script_service_lifecycle_and_secrets(remote_home):
    secret = f"s3cret-{uuid.uuid4().hex}"
    name = f"{RPREFIX}ticker"
    path = put("ticker.py", TICKER)
    host = client()
    try:
        hello = await host.connect()
        assert hello["user"] != os.environ.get("USER") and hello["uid"] != os.getuid(), hello
        svc = await host.create(
            {
                "name": name,
                "kind": "script",
                "env": env_prefix(),
                "path": path,
                "environment": {"API_TOKEN": secret, "MODE": "bench"},
                "secrets": ["API_TOKEN"],
            }
        )
        assert svc["name"] == name and svc["status"]["active_state"] == "inactive"
        assert svc["spec"]["environment"] == {"API_TOKEN": None, "MODE": "bench"}  # write-only, as locally
        listed = {s["name"]: s for s in await host.list()}
        assert name in listed
        svc = await host.act(name, "start")
        assert svc["status"]["active_state"] in ("active", "activating")
        stream = host.follow(name, backlog=100)
        messages, _ = await collect(stream, lambda m: len(ticks(m)) >= 5)
        await stream.aclose()
        # the secret reached the service (its hash), and nowhere else
        assert f"token sha {hashlib.sha256(secret.encode()).hexdigest()[:12]}" in messages
        unit = (await host.unit_text(name))["unit"]
        assert "API_TOKEN" not in unit and secret not in unit
        on_disk = ssh(f"cat ~/.config/systemd/user/{name}.service").stdout
        assert secret not in on_disk
        ps = subprocess.run(["ps", "-eo", "user,args", "ww"], capture_output=True, text=True).stdout
        assert secret not in ps and f"{RPREFIX}files/ticker.py" in ps  # it runs; no argument carries the secret
        assert secret not in ssh("journalctl --user --no-pager -o json -n 2000").stdout
        holders = ssh(
            f"grep -rl -- {secret} ~/.local/share/jupyter_condasvc ~/.config/systemd/user || true"
        ).stdout.split()
        assert holders, "the variables file was not written"
        modes = ssh("stat -c %a " + " ".join(shlex.quote(h) for h in holders)).stdout.split()
        assert set(modes) == {"600"}, dict(zip(holders, modes))
        assert not any("/systemd/user/" in h for h in holders)

        page = await host.logs(name, n=5)
        assert len(page["entries"]) == 5 and page["last_cursor"]
        svc = await host.act(name, "stop")
        assert svc["status"]["active_state"] in ("inactive", "failed")
        await host.delete(name)
        assert name not in {s["name"] for s in await host.list()}
        assert ssh(f"test -e ~/.config/systemd/user/{name}.service", check=False).returncode == 1
        with pytest.raises(RemoteError) as info:
            await host.get(name)
        assert info.value.status == 404 and HOST in info.value.message
    finally:
        await host.close()


async def test_remote_notebook_service_runs_on_the_remote_kernel(remote_home):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    cell = new_code_cell("alpha = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        cell,
        new_code_cell("import getpass, sys\nprint('ran as', getpass.getuser(), 'alpha', alpha, flush=True)"),
    ]
    name = f"{RPREFIX}nb"
    path = put("remote.ipynb", nbformat.writes(nb))
    host = client()
    try:
        await host.create(
            {
                "name": name,
                "kind": "notebook",
                "env": env_prefix(),
                "path": path,
                "restart": "no",
                "parameters": {"alpha": 7},
            }
        )
        stream = host.follow(name, backlog=100)
        await host.act(name, "start")
        messages, _ = await collect(stream, lambda m: any(x.startswith("ran as") for x in m))
        await stream.aclose()
        user = (await host.connect())["user"]
        assert f"ran as {user} alpha 7" in messages
        for _ in range(300):  # the run ends by itself (restart: no)
            status = (await host.get(name, fresh=True))["status"]
            if status["active_state"] in ("inactive", "failed"):
                break
            await asyncio.sleep(0.1)
        assert status["active_state"] == "inactive" and status["result"] == "success", status
        executed = ssh(f"cat ~/{RPREFIX}files/remote.out.ipynb").stdout
        assert "alpha = 7" in executed  # the executed copy, with its injected parameters, is on the remote host
        await host.delete(name)
    finally:
        await host.close()


async def test_remote_status_is_pushed(remote_home):
    """The host's status stream through the bridge: a snapshot, then the service's start, stop and removal."""
    name = f"{RPREFIX}watched"
    path = put("watched.py", "import time\ntime.sleep(600)\n")
    host = client()
    stream = host.watch()
    try:
        first = await asyncio.wait_for(stream.__anext__(), 60)
        assert first["type"] == "snapshot" and isinstance(first["services"], list)
        await host.create({"name": name, "kind": "script", "env": env_prefix(), "path": path})
        await host.act(name, "start")

        async def until(pred):
            while True:
                event = await asyncio.wait_for(stream.__anext__(), 60)
                if pred(event):
                    return event

        def state_of(event):
            if event.get("type") == "status" and event.get("name") == name:
                return event["status"]["active_state"]
            if event.get("type") == "service" and event["service"]["name"] == name:
                return event["service"]["status"]["active_state"]
            return None

        await until(lambda e: state_of(e) == "active")
        await host.act(name, "stop")
        await until(lambda e: state_of(e) in ("inactive", "failed"))
        await host.delete(name)
        await until(lambda e: e.get("type") == "removed" and e.get("name") == name)
    finally:
        await stream.aclose()
        await host.close()


def _config(tmp_path: Path, *, identity: str, known_hosts: str, port: str | None = None) -> Path:
    """An ssh_config like the test user's, for the same alias, with another key or known_hosts file."""
    port = port or os.environ["CONDASVC_SSH_PORT"]
    conf = tmp_path / "ssh_config"
    conf.write_text(
        textwrap.dedent(f"""\
        Host {HOST}
            HostName 127.0.0.1
            Port {port}
            User {os.environ.get("CONDASVC_SSH_REMOTE_USER", "")}
            IdentityFile {identity}
            IdentitiesOnly yes
            HostKeyAlias {HOST}
            UserKnownHostsFile {known_hosts}
            StrictHostKeyChecking yes
        """)
    )
    return conf


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


async def test_wrong_key_is_a_clear_error_and_local_services_go_on(remote_home, tmp_path, api, root):
    wrong = _keygen(tmp_path / "wrong_key")
    known = REAL_HOME / ".ssh" / "condasvc_test_known_hosts"
    conf = _config(tmp_path, identity=str(wrong), known_hosts=str(known))
    host = client(ssh_args=["-F", str(conf)], control_dir="")
    await create(api, root, "localone", "print('here')\n")
    try:
        results = await asyncio.gather(host.connect(), api("GET", "services"), return_exceptions=True)
        err, (code, data) = results
        assert isinstance(err, HostError), err
        assert err.kind == "auth" and "ssh-copy-id" in err.message and HOST in err.message, err.message
        assert code == 200 and any(s["name"] == "localone" for s in data["services"])
        # during the backoff the host answers with the same error, without dialling again
        with pytest.raises(HostError) as again:
            await host.list()
        assert again.value is err and host.state.failures == 1
    finally:
        await host.close()


async def test_changed_host_key_unknown_key_and_closed_port(remote_home, tmp_path):
    identity = str(REAL_HOME / ".ssh" / "condasvc_test_ed25519")
    other = _keygen(tmp_path / "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(f"{HOST} {' '.join(Path(str(other) + '.pub').read_text().split()[:2])}\n")
    changed = client(ssh_args=["-F", str(_config(tmp_path, identity=identity, known_hosts=str(known)))], control_dir="")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    (tmp_path / "u").mkdir()
    unknown = client(
        ssh_args=["-F", str(_config(tmp_path / "u", identity=identity, known_hosts=str(empty)))], control_dir=""
    )
    closed_port = str(free_port())  # a port nobody listens on
    (tmp_path / "c").mkdir()
    down = client(
        ssh_args=["-F", str(_config(tmp_path / "c", identity=identity, known_hosts=str(known), port=closed_port))],
        control_dir="",
    )
    try:
        errors = await asyncio.gather(changed.connect(), unknown.connect(), down.connect(), return_exceptions=True)
        kinds = [getattr(e, "kind", e) for e in errors]
        assert kinds == ["hostkey-changed", "hostkey-unknown", "unreachable"], errors
        assert "ssh-keygen -R" in errors[0].message
        assert "Connection refused" in errors[2].message
    finally:
        await asyncio.gather(changed.close(), unknown.close(), down.close())


async def test_no_bridge_on_the_host(remote_home):
    host = RemoteHost(HOST, bridge_command=f"{PYTHON} -m jupyter_condasvc_not_installed.bridge", control_dir="")
    try:
        with pytest.raises(HostError) as info:
            await host.connect()
        assert info.value.kind == "no-bridge" and "pip install" in info.value.message, info.value.detail
    finally:
        await host.close()


async def test_a_stalled_host_delays_neither_local_requests_nor_another_host(remote_home, api):
    """A host whose bridge hangs (the remote command sleeps before starting it): while its connect is still
    waiting, a local request and another host's list are answered. (Order, not timing: no clock is read.)"""
    stalled = RemoteHost(HOST, bridge_command=f"sleep 20; {BRIDGE}", connect_timeout=60, control_dir="")
    healthy = client(control_dir="")
    try:
        waiting = asyncio.ensure_future(stalled.connect())
        local = asyncio.ensure_future(api("GET", "services"))
        other = asyncio.ensure_future(healthy.list())
        await asyncio.wait({local, other})
        assert local.result()[0] == 200 and isinstance(other.result(), list)
        assert not waiting.done(), "the stalled host answered: the delay was not injected"
        assert healthy.state.connected and not stalled.state.connected
    finally:
        waiting.cancel()
        await asyncio.gather(stalled.close(), healthy.close(), return_exceptions=True)


def _helper():
    helper = os.environ.get("CONDASVC_ROOT_HELPER")
    if not helper:
        pytest.skip("stopping sshd needs root: scripts/test provides CONDASVC_ROOT_HELPER in root mode")
    return shlex.split(helper)


async def _helper_do(helper, action):
    proc = await asyncio.create_subprocess_exec(*helper, action, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"root helper {action}: {err.decode()}"


async def test_follow_resumes_by_cursor_after_sshd_restart(remote_home):
    helper = _helper()
    name = f"{RPREFIX}survivor"
    path = put("survivor.py", TICKER)
    host = client(min_backoff=0.2, max_backoff=1.0)
    try:
        await host.create({"name": name, "kind": "script", "env": env_prefix(), "path": path})
        await host.act(name, "start")
        mirror = HostMirror(host).start()
        await mirrored(mirror, lambda: not mirror.stale and name in mirror.services)
        stream = host.follow(name, backlog=1000)
        before, _ = await collect(stream, lambda m: len(ticks(m)) >= 10)
        connects = host.state.connects
        await _helper_do(helper, "sshd-stop")
        # the host's services stay listed, as last known, marked stale with the reason
        await mirrored(mirror, lambda: mirror.stale)
        assert [s["stale"] for s in mirror.list() if s["name"] == name] == [True]
        assert isinstance(mirror.error, HostError) and mirror.error.kind == "unreachable"
        await asyncio.sleep(1.5)  # the service goes on printing while the host is unreachable
        await _helper_do(helper, "sshd-start")
        after, events = await collect(stream, lambda m: len(ticks(before + m)) >= len(ticks(before)) + 60)
        await stream.aclose()
        await mirrored(mirror, lambda: not mirror.stale)  # a fresh snapshot after the reconnect
        assert mirror.services[name]["status"]["active_state"] in ("active", "activating")
        await mirror.close()
        assert any(e.get("type") == "lost" for e in events), events
        assert host.state.connects > connects
        got = [m for m in before + after if m.startswith("tick ")]
        await host.act(name, "stop")
        # the journal is the truth: what the follow delivered is exactly its lines, in order, from the first
        # (compared with the journal rather than with 0, 1, 2...: a service restarted by something else on this
        # shared machine, e.g. journald restarted under it, starts counting again)
        page = await host.logs(name, n=10000)
        journal = [e["message"] for e in page["entries"] if e["message"].startswith("tick ")]
        assert got == journal[: len(got)], "lost or duplicated lines across the reconnect"
        assert got[0] == "tick 0" and len(got) >= 70
        await host.delete(name)
    finally:
        await host.close()


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = [
        sys.executable,
        "-m",
        "jupyter_condasvc",
        "--host",
        HOST,
        *args,
        f"--CondaSvcApp.host_bridge_command={BRIDGE}",
    ]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_host_create_start_logs_stop_delete(remote_home, tmp_path):
    import json

    name = f"{RPREFIX}clisvc"
    path = put("cli.py", "import time\nprint('hello from the other host', flush=True)\ntime.sleep(600)\n")
    cli("create", name, "--env", env_prefix(), "--path", path, "--var", "K=v", "--start", "-q")
    listed = json.loads(cli("list", "--json").stdout)
    assert listed["host"] == HOST and name in {s["name"] for s in listed["services"]}
    assert {s["host"] for s in listed["services"]} == {HOST}
    edited = json.loads(cli("edit", name, "--var", "K2=w", "--json").stdout)  # adds a variable, keeps K
    assert edited["spec"]["environment"] == {"K": "v", "K2": "w"} and edited["host"] == HOST
    assert json.loads(cli("show", name, "--json").stdout)["host"] == HOST
    deadline = time.monotonic() + 30
    while "hello from the other host" not in cli("logs", name).stdout:
        assert time.monotonic() < deadline, "the remote service's line never came"
        time.sleep(0.3)
    # logs -f: nothing old (-n 0), then the line of a restart arrives through the follow; Ctrl-C ends it with 0
    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_condasvc",
            "--host",
            HOST,
            "logs",
            name,
            "-f",
            "-n",
            "0",
            f"--CondaSvcApp.host_bridge_command={BRIDGE}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "following" not in follow.stderr.readline():
            assert time.monotonic() < deadline and follow.poll() is None, "logs -f did not start"
        cli("restart", name)
        seen = []
        while not any("hello from the other host" in x for x in seen):  # after systemd's Stopping/Started lines
            seen.append(follow.stdout.readline())
            assert seen[-1], f"logs -f ended: {seen}"
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert "inactive" in cli("stop", name).stdout
    cli("delete", name)
    missing = cli("show", name, check=False)
    assert missing.returncode == 3 and HOST in missing.stderr
    unsupported = cli("doctor", check=False)
    assert unsupported.returncode == 2 and "--host" in unsupported.stderr


def test_cli_host_unreachable_exit_code(remote_home, tmp_path):
    port = str(free_port())
    conf = _config(tmp_path, identity="/nonexistent", known_hosts="/dev/null", port=port)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_condasvc",
            "--host",
            HOST,
            "list",
            f"--CondaSvcApp.host_ssh_args=['-F', '{conf}']",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 5 and "cannot be reached" in r.stderr and "Connection refused" in r.stderr, r.stderr


# -- GET hosts and `jupyter condasvc hosts` ------------------------------------------------------------------------
BAD = f"{HOST}-wrongkey"  # the same sshd and account, through a key it does not accept
STALL = f"{HOST}-stalled"  # the same sshd, whose bridge command sleeps before starting the bridge


def _hosts_config(tmp_path: Path) -> Path:
    """An ssh_config with the test host, plus BAD (another key; ``localhost``, so no ControlMaster socket is
    shared with the good connection) and STALL (the good key and address)."""
    conf = _config(
        tmp_path,
        identity=str(REAL_HOME / ".ssh" / "condasvc_test_ed25519"),
        known_hosts=str(REAL_HOME / ".ssh" / "condasvc_test_known_hosts"),
    )
    wrong = _keygen(tmp_path / "hosts_wrong_key")
    text = conf.read_text()
    bad = text.replace(f"Host {HOST}\n", f"Host {BAD}\n", 1).replace("HostName 127.0.0.1", "HostName localhost")
    bad = bad.replace(f"IdentityFile {REAL_HOME / '.ssh' / 'condasvc_test_ed25519'}", f"IdentityFile {wrong}")
    stall = text.replace(f"Host {HOST}\n", f"Host {STALL}\n", 1)
    conf.write_text(text + bad + stall)
    return conf


@pytest.fixture
def jp_server_config(jp_server_config, tmp_path):
    """The server of this module's API tests knows the test host, BAD and STALL (dialled only by GET hosts)."""
    if not HOST or not PYTHON:
        return jp_server_config
    (tmp_path / "sshconf").mkdir()
    conf = _hosts_config(tmp_path / "sshconf")
    jp_server_config["CondaSvcApp"].update(
        hosts=[HOST, BAD, STALL],
        host_bridge_command=BRIDGE,
        host_bridge_commands={STALL: f"sleep 90; {BRIDGE}"},
        host_connect_timeout=100.0,  # STALL is still connecting when the others are in, however slow this machine
        host_ssh_args=["-F", str(conf)],
        hosts_report_wait=2.0,
    )
    return jp_server_config


def _remote_systemd_version() -> str:
    """The remote user manager's version as systemd itself says it (the login may have no XDG_RUNTIME_DIR)."""
    return ssh(
        "XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/run/user/$(id -u)} systemctl --user show -p Version --value"
    ).stdout.strip()


async def test_get_hosts_reachable_wrong_key_and_stalled(remote_home, api):
    code, err = await api("GET", "hosts", refresh="maybe")
    assert code == 400 and err["field"] == "refresh"
    code, data = await api("GET", "hosts", refresh="1")
    assert code == 200 and [h["name"] for h in data["hosts"]] == ["local", HOST, BAD, STALL]
    # each host's check is its own task: poll until the good and the bad host are in; the stalled one meanwhile
    # answers from its (empty) last state, marked checking, and holds nobody up
    deadline = time.monotonic() + 120
    while any(h["reachable"] is None for h in data["hosts"] if h["name"] != STALL):
        assert time.monotonic() < deadline, data
        code, data = await api("GET", "hosts")
    rows = {h["name"]: h for h in data["hosts"]}
    local, good, bad, stalled = rows["local"], rows[HOST], rows[BAD], rows[STALL]

    assert local["local"] and local["reachable"] and local["error"] is None
    assert local["report"]["host"]["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert local["report"]["host"]["manager"]["reachable"]

    assert good["reachable"] is True and good["error"] is None and not good["stale"]
    assert good["report"]["host"]["manager"]["version"] == _remote_systemd_version()
    remote_user = os.environ.get("CONDASVC_SSH_REMOTE_USER")
    assert good["report"]["host"]["user"] == good["report"]["doctor"]["user"] == remote_user
    ids = [c["id"] for c in good["report"]["doctor"]["checks"]]
    assert {"manager", "journal", "linger", "cgroups"} <= set(ids), ids
    assert good["report"]["host"]["journal"]["state"] and "enabled" in good["report"]["host"]["linger"]

    assert bad["reachable"] is False and bad["report"] is None
    assert bad["error"]["kind"] == "auth" and "ssh-copy-id" in bad["error"]["fix"], bad["error"]
    assert stalled["checking"] and stalled["reachable"] is None and stalled["report"] is None

    # the good host's report is reused (not older than hosts_report_max_age); the bad host answers its last error
    # at once during its backoff; local services are unaffected
    code, again = await api("GET", "hosts")
    rows2 = {h["name"]: h for h in again["hosts"]}
    assert rows2[HOST]["checked_at"] == good["checked_at"]
    assert rows2[BAD]["error"] == bad["error"]
    code, listed = await api("GET", "services")
    assert code == 200 and isinstance(listed["services"], list)


def test_cli_hosts(remote_home, tmp_path):
    import json

    conf = _hosts_config(tmp_path)
    argv = [
        sys.executable,
        "-m",
        "jupyter_condasvc",
        "hosts",
        f"--CondaSvcApp.hosts=['{HOST}', '{BAD}']",
        f"--CondaSvcApp.host_bridge_command={BRIDGE}",
        f"--CondaSvcApp.host_ssh_args=['-F', '{conf}']",
    ]
    r = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 5, r.stderr  # a host cannot be reached
    rows = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert list(rows) == ["local", HOST, BAD]
    assert rows[HOST]["reachable"] and rows[HOST]["report"]["host"]["manager"]["version"] == _remote_systemd_version()
    assert rows[BAD]["error"]["kind"] == "auth"
    human = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert human.returncode == 5, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].split()[:4] == ["HOST", "REACHABLE", "USER", "SYSTEMD"]
    good = next(ln.split() for ln in lines if ln.startswith(HOST + " "))
    assert good[1:4] == ["yes", os.environ.get("CONDASVC_SSH_REMOTE_USER"), _remote_systemd_version()], lines
    assert any(ln.startswith(BAD) and "no (auth)" in ln for ln in lines)
    assert f"fix: Install your public key on it (`ssh-copy-id {BAD}`)" in human.stdout


async def test_hosts_report_reuses_reports_and_rechecks_failures(tmp_path):
    """HostsReport's policy with a real ssh to a closed port: a report is reused until max_age or ?refresh, a
    failed host is checked again at each request, and during its backoff answers its last error undialled."""
    from types import SimpleNamespace

    from jupyter_condasvc.hosts import HostsReport
    from jupyter_condasvc.remote import RemoteHosts

    conf = tmp_path / "ssh_config"
    conf.write_text(f"Host down\n    HostName 127.0.0.1\n    Port {free_port()}\n")
    calls = []

    async def local():
        calls.append(1)
        return {"n": len(calls)}

    settings = SimpleNamespace(hosts=["down"], host_ssh_args=["-F", str(conf)], host_connect_timeout=10.0)
    remotes = RemoteHosts(settings, control_dir="", min_backoff=600)
    report = HostsReport(local, remotes, max_age=3600, wait=None)
    try:
        first = (await report.report())["hosts"]
        assert [(h["name"], h["local"], h["reachable"]) for h in first] == [
            ("local", True, True),
            ("down", False, False),
        ]
        assert first[0]["report"] == {"n": 1} and first[1]["report"] is None and not first[1]["checking"]
        assert first[1]["error"]["kind"] == "unreachable" and "Connection refused" in first[1]["error"]["message"]
        second = (await report.report())["hosts"]
        assert second[0] == first[0] and len(calls) == 1  # reused
        assert second[1]["error"] == first[1]["error"] and remotes.get("down").state.failures == 1  # not dialled
        third = (await report.report(refresh=True))["hosts"]
        assert third[0]["report"] == {"n": 2}
    finally:
        report.close()
        await remotes.close()


def test_host_error_words_for_get_hosts():
    """A HostError's row carries its message without the fix repeated; a bridge's refusal is kind ``bridge``."""
    from jupyter_condasvc.hosts import error_json
    from jupyter_condasvc.remote import remote_error

    err = classify("h", "h@127.0.0.1: Permission denied (publickey).\n", 255)
    row = error_json(err)
    assert row["kind"] == "auth" and row["fix"] == err.fix and err.fix not in row["message"]
    assert row["message"] == "h refused the login (no key it accepts; passwords cannot be typed here)."
    old = error_json(remote_error("h", {"message": "The bridge has no operation 'doctor'.", "status": 400}))
    assert old["kind"] == "bridge" and "same version" in old["fix"] and "doctor" in old["message"]


def test_classify_reads_sshs_own_words():
    """The three messages OpenSSH 9 prints for the cases the real tests above reach, and one they cannot."""
    assert classify("h", "h15-r@127.0.0.1: Permission denied (publickey).\n", 255).kind == "auth"
    assert classify("h", "ssh: connect to host 127.0.0.1 port 9: Connection refused\n", 255).kind == "unreachable"
    assert classify("h", "ssh: Could not resolve hostname h: Name or service not known\n", 255).kind == "unreachable"
    assert classify("h", "bash: line 1: python3: command not found\n", 127).kind == "no-bridge"


def test_bridge_speaks_json_lines_and_refuses_bad_requests():
    """The bridge on this host, on a pipe (no ssh): hello, answers by id, clear errors for bad lines, exit at EOF."""
    import json

    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_condasvc.bridge"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        hello = json.loads(proc.stdout.readline())["hello"]
        assert hello["protocol"] == 1 and hello["uid"] == os.getuid()
        answers = {}
        for line in (
            "not json",
            '{"id": 1, "op": "nope"}',
            '{"id": 2, "op": "get"}',
            '{"id": 3, "op": "ping"}',
            '{"id": 4, "op": "get", "args": {"name": "no-such-service-here"}}',
        ):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            msg = json.loads(proc.stdout.readline())
            answers[msg["id"]] = msg
        assert answers[None]["error"]["status"] == 400
        assert answers[1]["error"]["status"] == 400 and answers[1]["error"]["field"] == "op"
        assert answers[2]["error"]["status"] == 400 and "name" in answers[2]["error"]["message"]
        assert answers[3]["result"] == {"pong": True}
        assert answers[4]["error"]["status"] == 404
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_mirror_applies_the_status_stream():
    """HostMirror.apply on the events socket's message shapes (pure: no host needed)."""
    mirror = HostMirror(RemoteHost("h", control_dir=""))
    svc = {"name": "a", "status": {"active_state": "inactive", "memory_current": None}}
    mirror.apply({"type": "snapshot", "services": [svc, {"name": "b", "status": {}}]})
    assert not mirror.stale and sorted(mirror.services) == ["a", "b"]
    mirror.apply({"type": "status", "name": "a", "status": {"active_state": "active"}})
    mirror.apply({"type": "metrics", "services": {"a": {"memory_current": 5}, "zz": {"memory_current": 1}}})
    mirror.apply({"type": "removed", "name": "b"})
    mirror.apply({"type": "service", "service": {"name": "c", "status": {"active_state": "failed"}}})
    assert mirror.services["a"]["status"] == {"active_state": "active", "memory_current": 5}
    assert sorted(mirror.services) == ["a", "c"]
    err = HostError("down.", kind="unreachable", host="h")
    mirror.apply({"type": "lost", "error": err})
    assert mirror.stale and mirror.error is err
    assert {(s["name"], s["host"], s["stale"]) for s in mirror.list()} == {("a", "h", True), ("c", "h", True)}
    mirror.apply({"type": "snapshot", "services": [{"name": "c", "status": {}}]})  # a fresh snapshot replaces all
    assert not mirror.stale and mirror.error is None and sorted(mirror.services) == ["c"]
    assert mirror.version == 7  # one per message applied


def test_remote_errors_keep_the_clis_exit_codes():
    """A bridge's error answer becomes the error class the local layer raises, so `--host` exits as locally."""
    from jupyter_condasvc.cli import exit_code
    from jupyter_condasvc.remote import remote_error

    def code(reason, status):
        return exit_code(remote_error("h", {"reason": reason, "status": status, "message": "m"}))

    assert [code("JobFailed", 409), code("Conflict", 409), code("ServiceNotFound", 404), code("InvalidSpec", 400)] == [
        1,
        4,
        3,
        2,
    ]
    assert exit_code(HostError("down.", kind="unreachable", host="h")) == 5
