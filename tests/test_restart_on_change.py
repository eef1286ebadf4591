"""restart_on_change: a .path unit watches the script and restarts the running service when it changes."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from helpers import PREFIX, UNIT_DIR, create, systemctl, unit_plan, wait_for
from jupyter_condasvc.units import MARKER, is_managed, render_path, render_restarter
from jupyter_condasvc.watchwarn import path_unit_warning

LOOP = "import time\nwhile True:\n    time.sleep(0.5)\n"


def test_path_and_restarter_units_are_escaped_and_ours():
    plan = unit_plan(
        name="w", unit_name="p-w.service", watch_path="/srv/100% done/app.py", systemctl="/usr/bin/systemctl"
    )
    path = render_path(plan)
    assert "PathChanged=/srv/100%% done/app.py\n" in path
    assert "Unit=p-w:on-change.service\n" in path
    restarter = render_restarter(plan)
    assert 'ExecStart=:"/usr/bin/systemctl" "--user" "try-restart" "p-w.service"' in restarter
    assert is_managed(path) and is_managed(restarter) and path.startswith(MARKER)
    assert plan.path_name == "p-w.path"


def _show(unit, prop):
    return systemctl("show", "-p", prop, "--value", unit).stdout.strip()


@pytest.mark.systemd
async def test_editing_the_file_restarts_the_running_service(api, root, unit_name):
    name = "onchange"
    unit = unit_name(name)
    path_unit, restarter = f"{PREFIX}{name}.path", f"{PREFIX}{name}:on-change.service"
    await create(api, root, name, LOOP, restart_on_change=True)
    for f in (path_unit, restarter):
        assert is_managed((UNIT_DIR / f).read_text()), f
    assert _show(path_unit, "ActiveState") == "active"
    assert _show(path_unit, "UnitFileState") == "enabled"
    assert str(root / f"{name}.py") in (UNIT_DIR / path_unit).read_text()

    code, _ = await api("POST", "services", name, "start")
    assert code == 200
    first = await wait_for(
        lambda: _async(_show(unit, "InvocationID") if _show(unit, "ActiveState") == "active" else None), timeout=30
    )

    (root / f"{name}.py").write_text(LOOP + "# edited\n")

    async def restarted():
        inv = _show(unit, "InvocationID")
        return inv if inv and inv != first and _show(unit, "ActiveState") == "active" else None

    second = await wait_for(restarted, timeout=30)
    assert second != first

    # stopped: a change does not start it (try-restart)
    code, _ = await api("POST", "services", name, "stop")
    assert code == 200
    await wait_for(lambda: _async(_show(unit, "ActiveState") == "inactive"), timeout=30)
    ran = _show(restarter, "InvocationID")
    assert ran  # it ran for the edit above
    (root / f"{name}.py").write_text(LOOP + "# edited again\n")
    await wait_for(
        lambda: _async(
            _show(restarter, "InvocationID") not in ("", ran) and _show(restarter, "ActiveState") == "inactive"
        ),
        timeout=30,
    )
    assert _show(unit, "ActiveState") == "inactive"

    # switched off: both units go
    code, svc = await api("PATCH", "services", name, body={"restart_on_change": False})
    assert code == 200, svc
    assert not (UNIT_DIR / path_unit).exists() and not (UNIT_DIR / restarter).exists()
    assert _show(path_unit, "ActiveState") == "inactive"

    # on again, then deleted: nothing of ours is left
    code, svc = await api("PATCH", "services", name, body={"restart_on_change": True})
    assert code == 200, svc
    assert _show(path_unit, "ActiveState") == "active"
    code, _ = await api("DELETE", "services", name)
    assert code == 204
    assert not list(UNIT_DIR.glob(f"{PREFIX}{name}*")) and not list(UNIT_DIR.glob(f"*.wants/{PREFIX}{name}*"))
    assert _show(path_unit, "ActiveState") == "inactive"


async def _async(value):
    return value


@pytest.mark.systemd
async def test_a_command_has_no_file_to_watch(api):
    code, err = await api(
        "POST",
        "services",
        body={
            "name": "onchange-cmd",
            "kind": "command",
            "env": "ml",
            "argv": ["sleep", "60"],
            "restart_on_change": True,
        },
    )
    assert code == 400 and err["field"] == "restart_on_change", err


def test_a_failed_watch_says_why_and_what_to_do():
    failed = {"ActiveState": "failed", "Result": "resources"}
    text = path_unit_warning("p-w.path", failed, "w.py")
    assert text and "not watching w.py" in text and "max_user_instances" in text and "start the service" in text
    assert "changed too often" in path_unit_warning("p-w.path", {**failed, "Result": "unit-start-limit-hit"}, "w.py")
    assert "journalctl --user -u p-w.path" in path_unit_warning("p-w.path", {**failed, "Result": "odd"}, None)
    assert path_unit_warning("p-w.path", {"ActiveState": "active", "Result": "success"}, "w.py") is None
    assert path_unit_warning("p-w.path", {}, "w.py") is None


def _take_all_inotify_instances() -> list:
    """Hold every inotify instance this user may have (fs.inotify.max_user_instances), as a program
    watching many files does: the user manager then cannot watch a file either."""
    libc = ctypes.CDLL(None, use_errno=True)
    fds = []
    while True:
        fd = libc.inotify_init1(os.O_CLOEXEC)
        if fd < 0:
            assert ctypes.get_errno() == errno.EMFILE, os.strerror(ctypes.get_errno())
            return fds
        fds.append(fd)


async def _listed(api, name):
    code, body = await api("GET", "services")
    assert code == 200, body
    return next(s for s in body["services"] if s["name"] == name)


@pytest.mark.systemd
async def test_a_watch_that_cannot_start_is_a_warning_until_a_start_rearms_it(api, root):
    name = "onchange-noinotify"
    path_unit = f"{PREFIX}{name}.path"
    fds = _take_all_inotify_instances()
    try:
        svc = await create(api, root, name, LOOP, restart_on_change=True)
    finally:
        for fd in fds:
            os.close(fd)
    try:
        assert (_show(path_unit, "ActiveState"), _show(path_unit, "Result")) == ("failed", "resources")
        said = [w for w in svc["warnings"] if "restart_on_change is not watching" in w]
        assert len(said) == 1 and "inotify" in said[0] and f"{name}.py" in said[0], svc["warnings"]
        code, svc = await api("GET", "services", name)
        assert code == 200 and said[0] in svc["warnings"], svc["warnings"]
        assert said[0] in (await _listed(api, name))["warnings"]

        # the instances are back: a start of the service watches again, and the warning goes
        code, svc = await api("POST", "services", name, "start")
        assert code == 200, svc
        assert _show(path_unit, "ActiveState") == "active"
        assert not [w for w in svc["warnings"] if "restart_on_change" in w], svc["warnings"]
        for svc in (await api("GET", "services", name))[1], await _listed(api, name):
            assert not [w for w in svc["warnings"] if "restart_on_change" in w], svc["warnings"]
    finally:
        code, _ = await api("DELETE", "services", name)
        assert code == 204
