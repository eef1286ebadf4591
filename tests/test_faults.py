"""Faults on the real stack: the extension survives them and says clearly what happened.

* the user manager re-executed (``daemon-reexec``) and the user bus restarted
  under a running server: the next API call works without any help, and the
  status WebSocket keeps (or resumes) pushing;
* a crash loop ends in ``failed``/``start-limit-hit``, the API says so, and
  reset-failed plus start recovers;
* concurrent creates of one name, concurrent edit and delete: one winner, no
  partial or orphaned files;
* unit or state directory not writable: 507, nothing half-written, the old
  files intact; disk full the same (needs a small tmpfs prepared by root:
  ``CONDASVC_FULL_DIR``);
* unit files and records edited by hand into garbage: the API shows the load
  error, PATCH rewrites the unit, nothing is lost, and the server keeps serving.

Every test here restarts or reloads the user manager of the user running the
suite; they run in sequence with the rest of the suite, never alongside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import PREFIX, SYSTEMCTL_ENV, UNIT_DIR, events, pushed, systemctl, wait_for
from helpers import create as _create
from jupyter_condasvc.units import MARKER, MARKER_KEY, is_managed

pytestmark = pytest.mark.systemd

SLEEPER = "import time\nprint('up', flush=True)\nwhile True:\n    time.sleep(0.5)\n"


async def create(api, root, name, text=SLEEPER, **spec):
    return await _create(api, root, name, text, **spec)


def our_files(state_dir: Path, name: str):
    """Every file of service ``name``: unit dir (unit, timer, .wants links) and state dir."""
    unit_side = sorted(str(p.relative_to(UNIT_DIR)) for p in UNIT_DIR.glob(f"**/{PREFIX}{name}.*"))
    state_side = (
        sorted(p.name for p in state_dir.rglob(f"{name}.*") if p.is_file() and not p.name.endswith(".environment.yml"))
        if state_dir.exists()
        else []
    )
    return unit_side, state_side


def verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", str(path)],
        capture_output=True,
        text=True,
        env=SYSTEMCTL_ENV,
        timeout=60,
    )


# -- the user manager and its bus go away and come back -------------------------


async def test_daemon_reexec_under_a_running_server(api, root, jp_ws_fetch, jp_serverapp):
    await create(api, root, "rx")
    stream, _ = await events(jp_ws_fetch)
    code, svc = await api("POST", "services", "rx", "start")
    assert code == 200 and svc["status"]["active_state"] == "active", svc
    pid = svc["status"]["main_pid"]
    await stream.until(pushed("rx", "active"))

    assert systemctl("daemon-reexec").returncode == 0
    # the service was not touched by the re-exec, and the API sees that without help
    code, svc = await api("GET", "services", "rx")
    assert code == 200 and svc["status"]["active_state"] == "active" and svc["status"]["main_pid"] == pid, svc
    code, listing = await api("GET", "services")
    assert code == 200 and [s["name"] for s in listing["services"]] == ["rx"]
    # actions work, and the status socket opened before the re-exec still pushes
    code, svc = await api("POST", "services", "rx", "stop")
    assert code == 200 and svc["status"]["active_state"] == "inactive", svc
    await stream.until(pushed("rx", "inactive"))
    code, svc = await api("POST", "services", "rx", "start")
    assert code == 200 and svc["status"]["active_state"] == "active", svc
    await stream.until(pushed("rx", "active"))
    # a change made behind the API's back (systemctl) is pushed too: the signal subscription survived
    systemctl("stop", f"{PREFIX}rx.service")
    await stream.until(pushed("rx", "inactive"))
    stream.ws.close()


async def test_user_bus_restart_reconnects_and_resumes_the_stream(api, root, jp_ws_fetch, jp_serverapp):
    """``systemctl --user restart dbus``: every client connection drops; the extension reconnects by itself."""
    await create(api, root, "bus")
    stream, _ = await events(jp_ws_fetch)
    systemd = jp_serverapp.web_app.settings["condasvc_systemd"]
    assert systemd.connected
    r = systemctl("restart", "dbus.service")
    assert r.returncode == 0, r.stderr
    msg = await stream.until(lambda m: m["type"] == "manager")
    assert msg["reachable"] is False and "reconnecting" in msg["message"]
    snap = await stream.until(lambda m: m["type"] == "snapshot")
    assert [s["name"] for s in snap["services"]] == ["bus"]
    # the API needs no restart either, and pushes flow on the new connection
    code, svc = await api("POST", "services", "bus", "start")
    assert code == 200 and svc["status"]["active_state"] == "active", svc
    await stream.until(pushed("bus", "active"))
    code, svc = await api("POST", "services", "bus", "stop")
    assert code == 200
    await stream.until(pushed("bus", "inactive"))
    stream.ws.close()


# -- a crash loop -------------------------------------------------------------


async def test_crash_loop_ends_in_start_limit_hit_and_recovers(api, root, jp_ws_fetch):
    # 3 starts within 60 s (not 10: on a loaded machine 3 slow starts may not fit in 10 s, and the loop goes on)
    await create(
        api,
        root,
        "loop",
        "import sys\nsys.exit(1)\n",
        restart="always",
        restart_sec=0.1,
        start_limit_burst=3,
        start_limit_interval_sec=60,
    )
    stream, _ = await events(jp_ws_fetch)
    code, svc = await api("POST", "services", "loop", "start")
    # Type=exec: the start job is done once exec() succeeded; the crashes come after
    assert code in (200, 409), svc

    async def limited():
        code, svc = await api("GET", "services", "loop")
        s = svc["status"]
        return s if s["active_state"] == "failed" and s["start_limit_hit"] else None

    # systemd keeps the crash's result (exit-code) when the start limit ends the loop; the API says which
    status = await wait_for(limited, timeout=20)
    assert status["exec_main_status"] == 1 and status["result"] in ("exit-code", "start-limit-hit"), status
    assert status["n_restarts"] >= 3, status
    await stream.until(lambda m: pushed("loop", "failed")(m) and m["service"]["status"]["start_limit_hit"])
    # a start now is refused by systemd, and the API says why
    code, err = await api("POST", "services", "loop", "start")
    assert code == 409, err
    assert "start limit was hit" in err["message"] and "reset-failed" in err["message"], err
    code, svc = await api("GET", "services", "loop")
    assert svc["status"]["start_limit_hit"] is True
    # fix the script, reset the counter, start: it runs
    (root / "loop.py").write_text(SLEEPER)
    code, svc = await api("POST", "services", "loop", "reset-failed")
    assert code == 200 and svc["status"]["active_state"] == "inactive" and not svc["status"]["start_limit_hit"], svc
    code, svc = await api("POST", "services", "loop", "start")
    assert code == 200 and svc["status"]["active_state"] == "active", svc
    await stream.until(pushed("loop", "active"))
    code, svc = await api("POST", "services", "loop", "stop")
    assert code == 200
    stream.ws.close()


# -- races ---------------------------------------------------------------------


async def test_concurrent_creates_of_one_name(api, root, state_dir):
    (root / "same.py").write_text(SLEEPER)
    specs = [
        {"name": "same", "kind": "script", "env": "ml", "path": "same.py", "description": f"attempt {i}"}
        for i in range(6)
    ]
    results = await asyncio.gather(*(api("POST", "services", body=s) for s in specs))
    codes = sorted(code for code, _ in results)
    assert codes == [201, 409, 409, 409, 409, 409], results
    winner = next(body for code, body in results if code == 201)
    unit = UNIT_DIR / f"{PREFIX}same.service"
    text = unit.read_text()
    assert is_managed(text) and f"Description={winner['spec']['description']}" in text
    assert verify(unit).returncode == 0
    code, body = await api("GET", "services", "same", "unit")
    assert code == 200 and body["unit"] == text
    record = json.loads((state_dir / "records" / "same.json").read_text())
    assert record["spec"]["description"] == winner["spec"]["description"]
    assert our_files(state_dir, "same") == ([f"{PREFIX}same.service"], ["same.env", "same.json"])
    for code, body in results:
        if code == 409:
            assert body["field"] == "name"


async def test_concurrent_creates_from_two_servers(api, root, state_dir, conda_root):
    """The CLI or a second server shares the state dir: the record is claimed exclusively."""
    from test_server_restart import Server

    (root / "twice.py").write_text(SLEEPER)
    other = Server(root, conda_root, state_dir, PREFIX)
    try:
        for round_ in range(3):
            name = f"twice{round_}"
            spec = {"name": name, "kind": "script", "env": "ml", "path": "twice.py"}
            theirs = asyncio.to_thread(other.call, "POST", "condasvc/api/services", spec)
            ours = api("POST", "services", body=spec)
            (c1, b1), (c2, b2) = await asyncio.gather(ours, theirs)
            assert sorted((c1, c2)) == [201, 409], (b1, b2)
            assert is_managed((UNIT_DIR / f"{PREFIX}{name}.service").read_text())
            assert our_files(state_dir, name) == ([f"{PREFIX}{name}.service"], [f"{name}.env", f"{name}.json"])
            code, _ = await api("DELETE", "services", name)
            assert code == 204
            assert our_files(state_dir, name) == ([], [])
    finally:
        other.stop()


async def test_concurrent_edit_and_delete_leave_no_orphans(api, root, state_dir):
    """Edits (adding and dropping a schedule, variables, enable) race deletes: all or nothing is left."""
    (root / "race.py").write_text(SLEEPER)
    for i in range(4):
        name = f"race{i}"
        spec = {
            "name": name,
            "kind": "script",
            "env": "ml",
            "path": "race.py",
            "environment": {"K": "v"},
            "schedule": "daily",
            "enabled": True,
        }
        code, body = await api("POST", "services", body=spec)
        assert code == 201, body
        patches = [
            {"schedule": None, "enabled": False, "environment": {"K": "w"}},
            {"schedule": "hourly", "enabled": True},
            {"description": "edited"},
        ]
        calls = [api("PATCH", "services", name, body=p) for p in patches]
        calls.insert(i % (len(calls) + 1), api("DELETE", "services", name))
        results = await asyncio.gather(*calls)
        codes = [c for c, _ in results]
        assert 204 in codes and all(c in (200, 204, 404) for c in codes), results
        # the delete won in the end (edits after it are 404): nothing is left anywhere
        assert our_files(state_dir, name) == ([], []), results
        assert systemctl("show", "-p", "LoadState", "--value", f"{PREFIX}{name}.timer").stdout.strip() == "not-found"
    # a timer never outlives its service, even mid-edit
    assert not list(UNIT_DIR.glob(f"{PREFIX}race*.timer"))


# -- storage faults ------------------------------------------------------------


class TestUnwritableDirectories:
    """The unit directory of this server is a scratch directory the test can make read-only."""

    @pytest.fixture
    def unit_dir(self, tmp_path):
        d = tmp_path / "units"
        d.mkdir()
        yield d
        d.chmod(0o755)

    @pytest.fixture
    def jp_server_config(self, jp_server_config, unit_dir):
        cfg = json.loads(json.dumps(jp_server_config))
        cfg["CondaSvcApp"]["unit_dir"] = str(unit_dir)
        return cfg

    async def test_create_into_a_read_only_unit_dir(self, api, root, unit_dir, state_dir):
        (root / "ro.py").write_text(SLEEPER)
        unit_dir.chmod(0o555)
        code, err = await api(
            "POST",
            "services",
            body={"name": "ro", "kind": "script", "env": "ml", "path": "ro.py", "environment": {"SECRET": "x"}},
        )
        assert code == 507, err
        assert str(unit_dir) in err["message"] and "nothing was changed" in err["message"]
        assert list(unit_dir.iterdir()) == []
        assert not state_dir.exists() or [p for p in state_dir.rglob("*") if p.is_file()] == [], (
            "a refused create leaves no record or env file"
        )
        code, listing = await api("GET", "services")
        assert code == 200 and listing["services"] == []

    async def test_edit_into_a_read_only_unit_dir_changes_nothing(self, api, root, unit_dir, state_dir):
        (root / "ed.py").write_text(SLEEPER)
        code, svc = await api(
            "POST",
            "services",
            body={"name": "ed", "kind": "script", "env": "ml", "path": "ed.py", "environment": {"TOKEN": "old"}},
        )
        assert code == 201, svc
        before = {p.name: p.read_bytes() for d in (unit_dir, state_dir) for p in d.rglob("*") if p.is_file()}
        unit_dir.chmod(0o555)
        code, err = await api("PATCH", "services", "ed", body={"environment": {"TOKEN": "new"}, "args": ["--x"]})
        assert code == 507, err
        after = {p.name: p.read_bytes() for d in (unit_dir, state_dir) for p in d.rglob("*") if p.is_file()}
        assert after == before, "a refused edit must leave every file as it was"
        code, svc = await api("GET", "services", "ed")
        assert code == 200 and svc["spec"]["environment"] == {"TOKEN": "old"} and svc["spec"]["args"] == []
        unit_dir.chmod(0o755)
        code, svc = await api("PATCH", "services", "ed", body={"environment": {"TOKEN": "new"}})
        assert code == 200, svc
        assert "TOKEN='new'" in (state_dir / "ed.env").read_text()


async def test_read_only_state_dir(api, root, state_dir, unit_name):
    (root / "st.py").write_text(SLEEPER)
    code, svc = await api("POST", "services", body={"name": "st", "kind": "script", "env": "ml", "path": "st.py"})
    assert code == 201
    unit = UNIT_DIR / unit_name("st")
    files = lambda: {p.name: p.read_bytes() for p in (unit, *state_dir.rglob("*")) if p.is_file()}  # noqa: E731
    before = files()
    for d in (state_dir, state_dir / "records"):
        d.chmod(0o555)
    try:
        code, err = await api("PATCH", "services", "st", body={"description": "new"})
        assert code == 507, err
        code, err = await api("POST", "services", body={"name": "st2", "kind": "script", "env": "ml", "path": "st.py"})
        assert code == 507, err
        code, err = await api("POST", "services", "st", "start")
        assert code == 200
        code, err = await api("DELETE", "services", "st")
        assert code == 507, err
        code, svc = await api("GET", "services", "st")
        assert svc["status"]["active_state"] == "active", "a refused delete stops nothing"
        after = files()
        assert after == before
        code, listing = await api("GET", "services")
        assert code == 200 and [s["name"] for s in listing["services"]] == ["st"]
    finally:
        for d in (state_dir, state_dir / "records"):
            d.chmod(0o700)
    code, _ = await api("DELETE", "services", "st")
    assert code == 204


class TestDiskFull:
    """ENOSPC needs a small file system, which only root can mount.

    Root prepares it and names it: ``mount -t tmpfs -o size=256k,mode=0700,uid=$UID tmpfs DIR`` then
    ``CONDASVC_FULL_DIR=DIR``. The test fills it to the last byte and points the state dir at it.
    """

    @pytest.fixture
    def full_dir(self):
        path = os.environ.get("CONDASVC_FULL_DIR")
        if not path:
            pytest.skip(
                "disk full needs a small tmpfs mounted by root: set CONDASVC_FULL_DIR to one the test user owns"
            )
        d = Path(path)

        def empty():
            for p in d.iterdir():
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()

        empty()
        yield d
        empty()

    @pytest.fixture
    def jp_server_config(self, jp_server_config, full_dir):
        cfg = json.loads(json.dumps(jp_server_config))
        cfg["CondaSvcApp"]["state_dir"] = str(full_dir)
        return cfg

    async def test_no_space_left(self, api, root, full_dir):
        (root / "fu.py").write_text(SLEEPER)
        code, svc = await api("POST", "services", body={"name": "fu", "kind": "script", "env": "ml", "path": "fu.py"})
        assert code == 201
        unit = UNIT_DIR / f"{PREFIX}fu.service"
        before_unit = unit.read_bytes()
        before = {str(p): p.read_bytes() for p in full_dir.rglob("*") if p.is_file()}
        filler = full_dir / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for chunk in (65536, 4096, 512, 1):  # to the last byte
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)
        code, err = await api("PATCH", "services", "fu", body={"environment": {"BIG": "x" * 8192}})
        assert code == 507, err
        assert "No space left" in err["message"]
        code, err = await api("POST", "services", body={"name": "fu2", "kind": "script", "env": "ml", "path": "fu.py"})
        assert code == 507, err
        assert unit.read_bytes() == before_unit
        assert {str(p): p.read_bytes() for p in full_dir.rglob("*") if p.is_file() and p != filler} == before
        assert not (UNIT_DIR / f"{PREFIX}fu2.service").exists()
        filler.unlink()
        code, _ = await api("GET", "services", "fu")
        assert code == 200
        code, _ = await api("DELETE", "services", "fu")
        assert code == 204


# -- files edited by hand ------------------------------------------------------


async def test_unit_edited_by_hand_into_an_invalid_one(api, root, state_dir, unit_name):
    await create(api, root, "hand", environment={"KEEP": "me"}, description="kept")
    path = UNIT_DIR / unit_name("hand")
    good = path.read_text()
    # still ours (marker and key), but systemd cannot load it: no ExecStart=, a bad Type=, garbage lines
    broken = (
        "\n".join(line for line in good.splitlines() if not line.startswith("ExecStart=")).replace(
            "Type=exec", "Type=bogus"
        )
        + "\nthis line is garbage\n[Nonsense\n"
    )
    assert broken.startswith(MARKER) and f"{MARKER_KEY}=yes" in broken
    path.write_text(broken)
    systemctl("daemon-reload")

    async def reloaded():  # the manager's Reloading signal reaches the server a moment after systemctl returns
        code, svc = await api("GET", "services", "hand")
        assert code == 200, svc
        return svc["status"] if svc["status"]["load_state"] != "loaded" else None

    status = await wait_for(reloaded, timeout=10)
    assert status["load_state"] in ("bad-setting", "error"), status
    assert status.get("load_error"), f"the load error should be shown: {status}"
    code, listing = await api("GET", "services")
    assert code == 200 and [s["status"]["load_state"] for s in listing["services"]] == [status["load_state"]]
    code, err = await api("POST", "services", "hand", "start")
    assert code in (404, 409) and err["message"], err
    code, body = await api("GET", "services", "hand", "unit")
    assert code == 200 and body["unit"] == broken
    # PATCH rewrites the unit from the record: nothing was lost
    code, svc = await api("PATCH", "services", "hand", body={"args": ["--fixed"]})
    assert code == 200, svc
    assert svc["status"]["load_state"] == "loaded" and svc["spec"]["description"] == "kept"
    assert svc["spec"]["environment"] == {"KEEP": "me"}
    assert verify(path).returncode == 0
    code, svc = await api("POST", "services", "hand", "start")
    assert code == 200 and svc["status"]["active_state"] == "active", svc
    await api("POST", "services", "hand", "stop")


async def test_unit_file_that_is_not_utf8(api, root, unit_name):
    await create(api, root, "bytes")
    path = UNIT_DIR / unit_name("bytes")
    path.write_bytes(path.read_bytes().replace(b"Description=", b"Description=\xff\xfe "))
    systemctl("daemon-reload")
    for sub in ((), ("unit",)):
        code, body = await api("GET", "services", "bytes", *sub)
        assert code == 200, (sub, body)
    code, body = await api("GET", "services", "bytes", "unit")
    assert "\ufffd" in body["unit"] or "\\xff" in body["unit"]
    code, svc = await api("PATCH", "services", "bytes", body={"description": "clean"})
    assert code == 200, svc
    assert b"\xff" not in path.read_bytes()


async def test_record_edited_by_hand(api, root, state_dir, jp_fetch):
    """A record that is not JSON, or whose spec no longer validates, spoils only its own service."""
    await create(api, root, "fine")
    await create(api, root, "notjson")
    await create(api, root, "badspec")
    (state_dir / "records" / "notjson.json").write_text("{ this is not json")
    record = json.loads((state_dir / "records" / "badspec.json").read_text())
    record["spec"]["restart"] = "sometimes"
    record["spec"]["unknown_field"] = 1
    (state_dir / "records" / "badspec.json").write_text(json.dumps(record))

    async def raw(method, *path, body=None):
        # not through `api`: a spec edited by hand is shown as stored, which the document's schema cannot promise
        resp = await jp_fetch(
            "condasvc",
            "api",
            *path,
            method=method,
            raise_error=False,
            body=json.dumps(body) if body is not None else None,
        )
        return resp.code, json.loads(resp.body or b"null")

    code, listing = await raw("GET", "services")
    assert code == 200, listing
    assert sorted(s["name"] for s in listing["services"]) == ["badspec", "fine", "notjson"]
    code, body = await raw("GET", "services", "badspec")
    assert code == 200 and body["spec"]["restart"] == "sometimes"
    for sub, method, patch in (((), "PATCH", {"description": "x"}), (("enable",), "POST", None)):
        code, body = await raw(method, "services", "badspec", *sub, body=patch if method == "PATCH" else {})
        assert code == 409 and "badspec.json" in body["message"] and "restart" in body["message"], body
    code, body = await raw("GET", "services", "notjson")
    assert code == 200 and "not JSON" in body["warnings"][0], body
    assert body["status"]["active_state"] == "inactive"
    code, body = await raw("PATCH", "services", "notjson", body={"description": "x"})
    assert code == 409 and "notjson.json" in body["message"], body
    code, _ = await raw("DELETE", "services", "notjson")  # a broken record can still be deleted
    assert code == 204
    assert not (state_dir / "records" / "notjson.json").exists()
    code, body = await api("GET", "services", "fine")
    assert code == 200
    code, _ = await raw("DELETE", "services", "badspec")
    assert code == 204
