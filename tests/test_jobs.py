"""Jobs: schedules armed by start, reloads kept to one per change, crash loops that stop at their limit."""
from __future__ import annotations

import asyncio

from conftest import create, systemctl, wait_for


def _reload_counter(jp_serverapp):
    """Counts the manager's own Reloading signals (whoever asked for the reload)."""
    systemd = jp_serverapp.web_app.settings["condasvc_systemd"]
    seen = []

    def listener(unit, event, data):
        if event == "reloaded":
            seen.append(1)

    systemd.add_listener(listener)
    return systemd, seen


async def _settle(systemd, seen):
    """Let signals already sent arrive: a round trip to the manager orders after them."""
    await systemd.ping()
    return len(seen)


async def test_schedule_is_armed_by_start_without_start_at_login(api, root, unit_name):
    (root / "tick.py").write_text("import time\nopen('ticks.txt', 'a').write(str(time.time()) + '\\n')\n")
    spec = {"name": "armed", "kind": "script", "env": "ml", "path": "tick.py", "schedule": "*:*:0/2", "restart": "no"}
    code, svc = await api("POST", "services", body=spec)
    assert code == 201 and svc["spec"]["enabled"] is False
    timer = unit_name("armed")[: -len(".service")] + ".timer"
    assert not svc["status"]["schedule"]["armed"]
    code, svc = await api("POST", "services", "armed", "start")
    assert code == 200, svc
    assert svc["status"]["schedule"]["armed"] and svc["status"]["schedule"]["next_run"]
    assert systemctl("is-active", timer).stdout.strip() == "active"
    assert systemctl("is-enabled", timer).stdout.strip() == "disabled"
    # the manual start wrote one tick; the timer writes the next ones
    await wait_for(lambda: asyncio.to_thread(lambda: len((root / "ticks.txt").read_text().splitlines()) >= 3), timeout=30)
    code, svc = await api("POST", "services", "armed", "pause")
    assert code == 200 and not svc["status"]["schedule"]["armed"]
    assert systemctl("is-active", timer).stdout.strip() == "inactive"
    code, svc = await api("POST", "services", "armed", "resume")
    assert code == 200 and svc["status"]["schedule"]["armed"]
    # pause/resume need a schedule
    (root / "plain.py").write_text("print(1)\n")
    await create(api, root, "plain", "print(1)\n")
    code, err = await api("POST", "services", "plain", "pause")
    assert code == 409 and err["field"] == "schedule"


async def test_a_schedule_added_by_edit_is_armed(api, root, unit_name):
    await create(api, root, "later", "print('tick')\n", restart="no")
    code, svc = await api("PATCH", "services", "later", body={"schedule": "*:*:0/2"})
    assert code == 200 and svc["status"]["schedule"]["armed"]
    await wait_for(lambda: _last_run(api, "later"), timeout=20)


async def _last_run(api, name):
    code, svc = await api("GET", "services", name)
    return svc["status"]["schedule"]["last_run"]


async def test_reloads_per_operation(api, root, jp_serverapp):
    systemd, seen = _reload_counter(jp_serverapp)
    start = await _settle(systemd, seen)
    await create(api, root, "fresh", "import time\ntime.sleep(60)\n")
    created = await _settle(systemd, seen)
    assert created - start == 0, "a brand-new unit is loaded on demand: no reload"
    code, _ = await api("POST", "services", "fresh", "enable")
    assert code == 200
    enabled = await _settle(systemd, seen)
    assert enabled - created == 0, "enablement is symlinks read at login: no reload"
    code, _ = await api("POST", "services", "fresh", "start")
    code, _ = await api("PATCH", "services", "fresh", body={"description": "edited"})
    assert code == 200
    edited = await _settle(systemd, seen)
    assert edited - enabled == 1, "an edit of a loaded unit costs exactly one reload"
    code, _ = await api("DELETE", "services", "fresh")
    assert code == 204
    deleted = await _settle(systemd, seen)
    assert deleted - edited <= 1
    print(f"reloads: create 0, enable 0, edit {edited - enabled}, delete {deleted - edited}")


async def test_concurrent_reloads_coalesce(jp_serverapp):
    systemd, seen = _reload_counter(jp_serverapp)
    before, asked = await _settle(systemd, seen), systemd.reloads
    await asyncio.gather(*(systemd.reload() for _ in range(10)))
    after = await _settle(systemd, seen)
    assert systemd.reloads - asked == 1 and after - before == 1


async def test_crash_loop_stops_at_its_limit_while_others_change(api, root, jp_serverapp):
    systemd, seen = _reload_counter(jp_serverapp)
    start = await _settle(systemd, seen)
    burst = 4
    await create(api, root, "loop", "import sys\nsys.exit(1)\n", restart="always", restart_sec=0.3,
                 start_limit_burst=burst, start_limit_interval_sec=120)
    code, _ = await api("POST", "services", "loop", "start")
    # others are created, enabled and edited while it loops
    for i in range(4):
        await create(api, root, f"busy{i}", "print('hi')\n", restart="no")
        await api("POST", "services", f"busy{i}", "enable")
        await api("PATCH", "services", f"busy{i}", body={"description": f"edit {i}"})
    seen_loop = []

    async def stopped():
        code, svc = await api("GET", "services", "loop")
        seen_loop.append(svc["status"].get("crash_looping"))
        return svc if svc["status"]["start_limit_hit"] else None

    svc = await wait_for(stopped, timeout=60, interval=0.1)
    reloads = await _settle(systemd, seen) - start
    restarts = svc["status"]["n_restarts"]
    print(f"loop stopped after {restarts} restarts; {reloads} reloads meanwhile")
    assert svc["status"]["active_state"] == "failed" and not svc["status"]["crash_looping"]
    # each reload resets systemd 252's start counter: at most one burst per reload, plus the first
    assert restarts <= burst * (reloads + 1)
    assert reloads <= 4, "creates and enables cost no reload, each edit at most one"
    assert any(seen_loop), "crash_looping showed while it looped"
    # the recovery action: reset-failed then start, in one
    code, svc = await api("POST", "services", "loop", "reset-and-start")
    assert code in (200, 409)
    code, svc = await api("GET", "services", "loop")
    assert svc["status"]["n_restarts"] is not None


async def test_stderr_is_logged_at_err_and_the_pid_is_the_programs(api, root):
    await create(api, root, "noisy", (
        "import sys, time\nprint('to stdout', flush=True)\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    import traceback; traceback.print_exc()\n"
        "sys.stderr.flush()\ntime.sleep(60)\n"
    ), restart="no")
    code, svc = await api("POST", "services", "noisy", "start")
    assert code == 200
    pid = svc["status"]["main_pid"]
    cmdline = (await asyncio.to_thread(open(f"/proc/{pid}/cmdline", "rb").read)).split(b"\0")
    assert cmdline[-2].endswith(b"noisy.py"), "systemd-cat execs the program: the main PID is Python itself"

    async def errors():
        code, page = await api("GET", "services", "noisy", "logs", priority="err")
        return page["entries"] if any("ZeroDivisionError" in e["message"] for e in page["entries"]) else None

    entries = await wait_for(errors, timeout=20)
    assert all(e["priority"] <= 3 for e in entries)
    assert not any("to stdout" in e["message"] for e in entries)
    assert any(e["message"].startswith("Traceback") for e in entries)
    code, page = await api("GET", "services", "noisy", "logs", n=50)
    out = [e for e in page["entries"] if e["message"] == "to stdout"]
    assert out and out[0]["priority"] == 6 and out[0]["identifier"] == "noisy"


async def test_non_finite_parameters_are_refused_naming_the_field(api, root, jp_fetch):
    (root / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    for raw in ('1e400', 'NaN', '-Infinity', '[1, {"deep": 1e999}]'):
        body = '{"name": "nf", "kind": "notebook", "env": "ml", "path": "nb.ipynb", "parameters": {"x": %s}}' % raw
        resp = await jp_fetch("condasvc", "api", "services", method="POST", body=body, raise_error=False)
        assert resp.code == 400, raw
        import json

        err = json.loads(resp.body)
        assert err["field"] == "parameters" and "parameter x" in err["message"], err
    code, listed = await api("GET", "services")
    assert code == 200 and not [s for s in listed["services"] if s["name"] == "nf"]


async def test_notebooks_default_to_run_once(api, root):
    (root / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    code, svc = await api("POST", "services", body={"name": "once", "kind": "notebook", "env": "ml", "path": "nb.ipynb"})
    assert code == 201, svc
    code, unit = await api("GET", "services", "once", "unit")
    assert "\nRestart=no\n" in unit["unit"]
