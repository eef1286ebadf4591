"""Access: authorisation, secrets, and one user's services out of another's reach.

* ``@authorized`` is honoured: with an authorizer that allows only "read", a
  user lists services, reads one, its unit and its logs, and opens both
  WebSockets, but every create, preview, edit, action and delete is 403 and
  changes nothing. An authorizer that allows nothing closes the sockets too.
* Variables stay out of every place other users (or other processes of the
  same user over D-Bus) can read: not in the unit file, not in the unit's D-Bus
  properties (``Environment``), not in the journal; the environment file, the
  record and the state directory are private (0600/0700).
* Two users, each with their own manager: the other user's bus cannot be
  reached, their state directory and environment files cannot be read, their
  journal is not ours. Needs a second account with a running user manager:
  ``CONDASVC_OTHER_USER`` (as root: ``scripts/systemd-stack up condasvc-b``,
  then create one service as that user, e.g. with ``jupyter condasvc create``).
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from helpers import PREFIX, SYSTEMCTL_ENV, UNIT_DIR, journal, systemctl, wait_for

pytestmark = pytest.mark.systemd


class ReadOnlyAuthorizer(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return action == "read"


class NobodyAuthorizer(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "condasvc"


def authorized_by(authorizer):
    """A ``jp_server_config`` fixture for a test class: the usual server, with AUTHORIZER deciding."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        cfg = dict(jp_server_config)
        cfg["ServerApp"] = {**cfg["ServerApp"], "authorizer_class": authorizer}
        return cfg

    return jp_server_config


SLEEPER = "import os, time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.5)\n"


@pytest.fixture
def seeded(jp_serverapp, jp_asyncio_loop, root):
    """A service 'seen' made through the service layer (the API would refuse it under these authorizers)."""
    (root / "seen.py").write_text(SLEEPER)
    services = jp_serverapp.web_app.settings["condasvc_services"]
    yield jp_asyncio_loop.run_until_complete(
        services.create(
            {
                "name": "seen",
                "kind": "script",
                "env": "ml",
                "path": "seen.py",
                "environment": {"API_KEY": "s3cret-value"},
            }
        )
    )
    jp_asyncio_loop.run_until_complete(services.delete("seen"))


class TestReadOnlyUser:
    jp_server_config = authorized_by(ReadOnlyAuthorizer)

    async def test_reads_allowed_writes_refused(self, api, seeded, jp_ws_fetch, unit_name, state_dir):
        unit = UNIT_DIR / unit_name("seen")
        before = unit.read_bytes(), sorted(p.name for p in state_dir.rglob("*"))
        for path in (
            ("services",),
            ("services", "seen"),
            ("services", "seen", "unit"),
            ("services", "seen", "logs"),
            ("environments",),
            ("host",),
        ):
            code, body = await api("GET", *path)
            assert code == 200, (path, body)
        ws = await jp_ws_fetch("condasvc", "api", "events")
        assert json.loads(await ws.read_message())["type"] == "snapshot"
        ws.close()
        ws = await jp_ws_fetch("condasvc", "api", "services", "seen", "logs", "follow")
        assert json.loads(await ws.read_message())["type"] == "hello"
        ws.close()

        spec = {"name": "new", "kind": "script", "env": "ml", "path": "seen.py"}
        refused = [
            ("POST", ("services",), spec),
            ("POST", ("preview",), spec),
            ("PATCH", ("services", "seen"), {"args": ["--x"]}),
            ("DELETE", ("services", "seen"), None),
        ]
        refused += [
            ("POST", ("services", "seen", a), None)
            for a in ("start", "stop", "restart", "enable", "disable", "reset-failed", "run-now")
        ]
        for method, path, body in refused:
            code, err = await api(method, *path, body=body)
            assert code == 403, (method, path, code, err)
        assert (unit.read_bytes(), sorted(p.name for p in state_dir.rglob("*"))) == before
        assert systemctl("is-active", unit_name("seen")).stdout.strip() == "inactive"
        assert not (UNIT_DIR / unit_name("new")).exists()


class TestNobody:
    jp_server_config = authorized_by(NobodyAuthorizer)

    async def test_everything_refused(self, api, seeded, jp_ws_fetch):
        for path in (("services",), ("services", "seen"), ("services", "seen", "logs"), ("host",)):
            code, _ = await api("GET", *path)
            assert code == 403, path
        for path in (("events",), ("services", "seen", "logs", "follow")):
            with pytest.raises(HTTPClientError) as info:
                await jp_ws_fetch("condasvc", "api", *path)
            assert info.value.code == 403, path


# -- secrets -------------------------------------------------------------------


async def test_variables_stay_out_of_units_dbus_and_journal(api, root, jp_serverapp, unit_name, state_dir):
    secret = "s3cret-Zq9"
    (root / "keep.py").write_text(
        "import os, time\nprint('has key:', 'API_KEY' in os.environ, flush=True)\ntime.sleep(30)\n"
    )
    code, svc = await api(
        "POST",
        "services",
        body={
            "name": "keep",
            "kind": "script",
            "env": "ml",
            "path": "keep.py",
            "environment": {"API_KEY": secret},
            "description": "holds a key",
        },
    )
    assert code == 201, svc
    code, svc = await api("POST", "services", "keep", "start")
    assert code == 200 and svc["status"]["active_state"] == "active", svc
    unit = unit_name("keep")
    # the unit file (0644, anyone may read it) and everything systemd says about the unit
    assert secret not in (UNIT_DIR / unit).read_text()
    show = systemctl("show", unit).stdout
    assert secret not in show and "API_KEY" not in show
    props = await jp_serverapp.web_app.settings["condasvc_systemd"].get_unit_properties(unit, fresh=True)
    assert secret not in json.dumps(props, default=str)
    assert not any(e.startswith("API_KEY") for e in props["Environment"])
    assert [f[0] for f in props["EnvironmentFiles"]] == [str(state_dir / "keep.env")]
    assert secret not in systemctl("cat", unit).stdout and secret not in systemctl("status", unit).stdout
    # the process has it; the journal does not (the service logs only that it has it)
    assert f"API_KEY={secret}".encode() in Path(f"/proc/{svc['status']['main_pid']}/environ").read_bytes()
    await wait_for(lambda: _async(lambda: "has key: True" in journal(unit)))
    everything = subprocess.run(
        ["journalctl", "--user", "-o", "verbose", "--no-pager", "--since", "-5m"],
        capture_output=True,
        text=True,
        env=SYSTEMCTL_ENV,
    ).stdout
    assert secret not in everything
    # the files that do hold it are private, in a private folder
    for path in (state_dir / "keep.env", state_dir / "records" / "keep.json"):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert secret in (state_dir / "keep.env").read_text()
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    await api("POST", "services", "keep", "stop")


async def _async(fn):
    return await asyncio.to_thread(fn)


# -- two users -----------------------------------------------------------------


@pytest.fixture
def other_user():
    name = os.environ.get("CONDASVC_OTHER_USER")
    if not name:
        pytest.skip(
            "needs a second account with a running user manager and a service: set CONDASVC_OTHER_USER "
            "(as root: scripts/systemd-stack up condasvc-b, then create a service as that user)"
        )
    entry = pwd.getpwnam(name)
    if entry.pw_uid == os.getuid():
        pytest.skip("CONDASVC_OTHER_USER is the user running the tests")
    return entry


def test_other_users_bus_is_out_of_reach(other_user):
    bus = f"/run/user/{other_user.pw_uid}/bus"
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(PermissionError):
        s.connect(bus)
    r = subprocess.run(
        ["systemctl", "--user", "list-units", "--all", "--no-pager"],
        capture_output=True,
        text=True,
        env={
            **SYSTEMCTL_ENV,
            "XDG_RUNTIME_DIR": f"/run/user/{other_user.pw_uid}",
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus}",
        },
    )
    assert r.returncode != 0
    r = systemctl(f"--machine={other_user.pw_name}@", "list-units")
    assert r.returncode != 0


def test_other_users_files_and_journal_are_private(other_user):
    home = Path(other_user.pw_dir)
    state = home / ".local" / "share" / "jupyter_condasvc"
    if not os.path.lexists(state):
        pytest.skip(f"{other_user.pw_name} has no services (no {state})")
    with pytest.raises(PermissionError):  # not even the names of their services
        list(state.iterdir())
    out = subprocess.run(
        ["journalctl", "--no-pager", f"_UID={other_user.pw_uid}", "-n", "5", "-q"],
        capture_output=True,
        text=True,
        env=SYSTEMCTL_ENV,
    ).stdout
    assert out.strip() == "", "the other user's journal entries must not be readable"


class TestServerPointedAtAnotherUsersBus:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, other_user):
        cfg = json.loads(json.dumps(jp_server_config))
        cfg["SystemdManager"] = {"bus_address": f"unix:path=/run/user/{other_user.pw_uid}/bus", "call_timeout": 5.0}
        return cfg

    async def test_cannot_list_or_act(self, api, root, other_user):
        code, err = await api("GET", "services")
        assert code == 503, err
        (root / "x.py").write_text("print(1)\n")
        code, err = await api("POST", "services", body={"name": "x", "kind": "script", "env": "ml", "path": "x.py"})
        assert code == 503, err
        assert not list(UNIT_DIR.glob(f"{PREFIX}x.*"))


async def test_secret_variables_are_write_only(api, root, jp_ws_fetch):
    """A variable marked secret is never answered back, and an edit that cannot know it keeps it."""
    import json as _json

    (root / "sec.py").write_text(
        "import os, time\nprint('token length', len(os.environ['TOKEN']), flush=True)\ntime.sleep(60)\n"
    )
    spec = {
        "name": "sec",
        "kind": "script",
        "env": "ml",
        "path": "sec.py",
        "environment": {"TOKEN": "s3cr3t-value", "PLAIN": "visible"},
        "secrets": ["TOKEN"],
    }
    code, svc = await api("POST", "services", body=spec)
    assert code == 201, svc
    assert svc["spec"]["environment"] == {"TOKEN": None, "PLAIN": "visible"}
    code, listing = await api("GET", "services")
    assert "s3cr3t-value" not in _json.dumps(listing)
    ws = await jp_ws_fetch("condasvc", "api", "events")
    snapshot = await ws.read_message()
    ws.close()
    assert "s3cr3t-value" not in snapshot
    # an edit from a client that only saw null keeps the stored value
    code, svc = await api(
        "PATCH", "services", "sec", body={"environment": {"TOKEN": None, "PLAIN": "changed"}, "args": ["x"]}
    )
    assert code == 200, svc
    code, svc = await api("POST", "services", "sec", "start")
    environ = Path(f"/proc/{svc['status']['main_pid']}/environ").read_bytes().split(b"\0")
    assert b"TOKEN=s3cr3t-value" in environ and b"PLAIN=changed" in environ
    assert "s3cr3t-value" not in _json.dumps(svc)
    # naming a secret that is not a variable is refused
    code, err = await api("PATCH", "services", "sec", body={"secrets": ["NOPE"]})
    assert code == 400 and err["field"] == "secrets"
