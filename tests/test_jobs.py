"""Jobs: schedules armed by start, reloads kept to one per change, crash loops that stop at their limit."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from helpers import REAL_HOME, create, systemctl, wait_for, write_failing_notebook
from jupyter_condasvc.timerstamp import stamp_candidates


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
    spec = {"name": "j-armed", "kind": "script", "env": "ml", "path": "tick.py", "schedule": "*:*:0/2", "restart": "no"}
    code, svc = await api("POST", "services", body=spec)
    assert code == 201 and svc["spec"]["enabled"] is False
    timer = unit_name("j-armed")[: -len(".service")] + ".timer"
    assert not svc["status"]["schedule"]["armed"]
    code, svc = await api("POST", "services", "j-armed", "start")
    assert code == 200, svc
    assert svc["status"]["schedule"]["armed"] and svc["status"]["schedule"]["next_run"]
    assert systemctl("is-active", timer).stdout.strip() == "active"
    assert systemctl("is-enabled", timer).stdout.strip() == "disabled"
    # the manual start wrote one tick; the timer writes the next ones
    ticks = root / "ticks.txt"
    await wait_for(
        lambda: asyncio.to_thread(lambda: ticks.exists() and len(ticks.read_text().splitlines()) >= 3), timeout=30
    )
    code, svc = await api("POST", "services", "j-armed", "pause")
    assert code == 200 and not svc["status"]["schedule"]["armed"]
    assert systemctl("is-active", timer).stdout.strip() == "inactive"
    code, svc = await api("POST", "services", "j-armed", "resume")
    assert code == 200 and svc["status"]["schedule"]["armed"]
    # pause/resume need a schedule
    (root / "plain.py").write_text("print(1)\n")
    await create(api, root, "j-plain", "print(1)\n")
    code, err = await api("POST", "services", "j-plain", "pause")
    assert code == 409 and err["field"] == "schedule"
    # timers firing every 2 s would load the rest of the run
    assert (await api("DELETE", "services", "j-armed"))[0] == 204


async def test_a_schedule_added_by_edit_is_armed(api, root, unit_name):
    await create(api, root, "j-later", "print('tick')\n", restart="no")
    code, svc = await api("PATCH", "services", "j-later", body={"schedule": "*:*:0/2"})
    assert code == 200 and svc["status"]["schedule"]["armed"]
    await wait_for(lambda: _last_run(api, "j-later"), timeout=20)
    assert (await api("DELETE", "services", "j-later"))[0] == 204


async def test_a_resumed_schedule_does_not_catch_up_what_it_missed_while_paused(api, root, unit_name):
    """Persistent=true catches up elapses missed while logged out; not those of a pause the user asked for."""
    await create(api, root, "j-paused", "print('tick')\n", schedule="hourly", restart="no")
    unit, timer = unit_name("j-paused"), unit_name("j-paused")[: -len(".service")] + ".timer"
    assert (await api("POST", "services", "j-paused", "start"))[0] == 200  # one manual run; arms the timer
    first = await wait_for(lambda: _runs_count(api, "j-paused", 1), timeout=30)
    ran = systemctl("show", "-p", "InvocationID", "--value", unit).stdout.strip()
    assert [r["id"] for r in first] == [ran] and first[0]["trigger"] == "manual", first
    assert (await api("POST", "services", "j-paused", "pause"))[0] == 200
    # as if the pause had lasted two hours: the hourly elapse in between was missed (the manager's stamp file)
    stamp = REAL_HOME / ".local/share/systemd/timers" / f"stamp-{timer}"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    past = stamp.stat().st_mtime - 7200
    os.utime(stamp, (past, past))
    code, svc = await api("POST", "services", "j-paused", "resume")
    assert code == 200 and svc["status"]["schedule"]["armed"], svc
    assert stamp.stat().st_mtime > past + 3600
    # A catch-up would be due at once; the timer (AccuracySec=1s) may take up to a second to fire it. Give it
    # three, then the next elapse must be the coming hour and the service must not have run again.
    await asyncio.sleep(3)
    assert systemctl("show", "-p", "InvocationID", "--value", unit).stdout.strip() == ran
    code, svc = await api("GET", "services", "j-paused")
    next_run = datetime.fromisoformat(svc["status"]["schedule"]["next_run"].replace("Z", "+00:00"))
    assert next_run > datetime.now(timezone.utc), svc["status"]["schedule"]
    assert [r["id"] for r in await _runs(api, "j-paused")] == [ran]
    assert (await api("DELETE", "services", "j-paused"))[0] == 204


def test_stamp_candidates_follow_xdg_data_home(monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", "/data/u")
    monkeypatch.setenv("HOME", "/home/u")
    paths = [str(p) for p in stamp_candidates("p-x.timer")]
    assert paths[:2] == [
        "/data/u/systemd/timers/stamp-p-x.timer",
        "/home/u/.local/share/systemd/timers/stamp-p-x.timer",
    ]
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # systemd ignores a relative one
    assert str(stamp_candidates("p-x.timer")[0]) == "/home/u/.local/share/systemd/timers/stamp-p-x.timer"


async def _last_run(api, name):
    code, svc = await api("GET", "services", name)
    return svc["status"]["schedule"]["last_run"]


async def test_reloads_per_operation(api, root, jp_serverapp):
    systemd, seen = _reload_counter(jp_serverapp)
    start = await _settle(systemd, seen)
    await create(api, root, "j-fresh", "import time\ntime.sleep(60)\n")
    created = await _settle(systemd, seen)
    assert created - start == 0, "a brand-new unit is loaded on demand: no reload"
    code, _ = await api("POST", "services", "j-fresh", "enable")
    assert code == 200
    enabled = await _settle(systemd, seen)
    assert enabled - created == 0, "enablement is symlinks read at login: no reload"
    code, _ = await api("POST", "services", "j-fresh", "start")
    code, _ = await api("PATCH", "services", "j-fresh", body={"description": "edited"})
    assert code == 200
    edited = await _settle(systemd, seen)
    assert edited - enabled == 1, "an edit of a loaded unit costs exactly one reload"
    code, _ = await api("DELETE", "services", "j-fresh")
    assert code == 204
    deleted = await _settle(systemd, seen)
    assert deleted - edited <= 1
    print(f"reloads: create 0, enable 0, edit {edited - enabled}, delete {deleted - edited}")


async def test_enable_of_a_loaded_unit_reports_the_state_on_disk(api, root, jp_serverapp):
    """No reload on enable: systemd 252 keeps a loaded (failed or running) unit's old UnitFileState until one."""
    services = jp_serverapp.web_app.settings["condasvc_services"]
    await create(api, root, "j-failed", "import sys\nsys.exit(3)\n")
    await create(api, root, "j-running", "import time\ntime.sleep(120)\n")
    await api("POST", "services", "j-failed", "start")
    await api("POST", "services", "j-running", "start")

    async def failed() -> bool:
        return (await api("GET", "services", "j-failed"))[1]["status"]["active_state"] == "failed"

    assert await wait_for(failed)
    for name in ("j-failed", "j-running"):
        unit = services.store.unit_name(name)
        code, svc = await api("POST", "services", name, "enable")
        assert code == 200 and svc["status"]["unit_file_state"] == "enabled", svc["status"]
        code, svc = await api("GET", "services", name)
        assert svc["status"]["unit_file_state"] == "enabled"
        # what systemd itself says of the loaded unit, before any reload (the reason for this test)
        print(name, "systemctl show:", systemctl("show", "-p", "UnitFileState", unit).stdout.strip())
        code, svc = await api("POST", "services", name, "disable")
        assert code == 200 and svc["status"]["unit_file_state"] == "disabled", svc["status"]
        code, svc = await api("POST", "services", name, "enable")
        assert svc["status"]["unit_file_state"] == "enabled"
    await services.systemd.reload()
    for name in ("j-failed", "j-running"):
        unit = services.store.unit_name(name)
        assert systemctl("show", "-p", "UnitFileState", unit).stdout.strip() == "UnitFileState=enabled"
        code, svc = await api("GET", "services", name)
        assert svc["status"]["unit_file_state"] == "enabled"


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
    await create(
        api,
        root,
        "j-loop",
        "import sys\nsys.exit(1)\n",
        restart="always",
        restart_sec=0.3,
        start_limit_burst=burst,
        start_limit_interval_sec=120,
    )
    code, _ = await api("POST", "services", "j-loop", "start")
    # others are created, enabled and edited while it loops
    for i in range(4):
        await create(api, root, f"j-busy{i}", "import time\ntime.sleep(120)\n", restart="no")
        await api("POST", "services", f"j-busy{i}", "enable")
        await api("POST", "services", f"j-busy{i}", "start")
        # a running unit is loaded: its edit costs a reload (which, on 252, resets every start counter)
        await api("PATCH", "services", f"j-busy{i}", body={"description": f"edit {i}"})
    seen_loop = []

    async def stopped():
        code, svc = await api("GET", "services", "j-loop")
        seen_loop.append(svc["status"].get("crash_looping"))
        return svc if svc["status"]["start_limit_hit"] else None

    svc = await wait_for(stopped, timeout=60, interval=0.1)
    reloads = await _settle(systemd, seen) - start
    restarts = svc["status"]["n_restarts"]
    print(f"loop stopped after {restarts} restarts; {reloads} reloads meanwhile")
    assert svc["status"]["active_state"] == "failed" and not svc["status"]["crash_looping"]
    # each reload resets systemd 252's start counter: at most one burst per reload, plus the first
    assert restarts <= burst * (reloads + 1)
    assert 1 <= reloads <= 4, "creates, enables and starts cost no reload, each edit of a loaded unit one"
    assert any(seen_loop), "crash_looping showed while it looped"
    # the recovery action: reset-failed then start, in one
    code, svc = await api("POST", "services", "j-loop", "reset-and-start")
    assert code in (200, 409)
    code, svc = await api("GET", "services", "j-loop")
    assert svc["status"]["n_restarts"] is not None


async def test_stderr_is_logged_at_err_and_the_pid_is_the_programs(api, root):
    await create(
        api,
        root,
        "j-noisy",
        (
            "import sys, time\nprint('to stdout', flush=True)\n"
            "try:\n    1 / 0\nexcept ZeroDivisionError:\n    import traceback; traceback.print_exc()\n"
            "sys.stderr.flush()\ntime.sleep(60)\n"
        ),
        restart="no",
    )
    code, svc = await api("POST", "services", "j-noisy", "start")
    assert code == 200
    pid = svc["status"]["main_pid"]
    cmdline = (await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)).split(b"\0")
    assert cmdline[-2].endswith(b"noisy.py"), "systemd-cat execs the program: the main PID is Python itself"

    async def errors():
        code, page = await api("GET", "services", "j-noisy", "logs", priority="err")
        return page["entries"] if any("ZeroDivisionError" in e["message"] for e in page["entries"]) else None

    entries = await wait_for(errors, timeout=20)
    assert all(e["priority"] <= 3 for e in entries)
    assert not any("to stdout" in e["message"] for e in entries)
    assert any(e["message"].startswith("Traceback") for e in entries)
    code, page = await api("GET", "services", "j-noisy", "logs", n=50)
    out = [e for e in page["entries"] if e["message"] == "to stdout"]
    assert out and out[0]["priority"] == 6 and out[0]["identifier"] == "j-noisy"


async def test_non_finite_parameters_are_refused_naming_the_field(api, root, jp_fetch):
    (root / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    for raw in ("1e400", "NaN", "-Infinity", '[1, {"deep": 1e999}]'):
        body = '{"name": "j-nf", "kind": "notebook", "env": "ml", "path": "nb.ipynb", "parameters": {"x": ' + raw + "}}"
        resp = await jp_fetch("condasvc", "api", "services", method="POST", body=body, raise_error=False)
        assert resp.code == 400, raw
        err = json.loads(resp.body)
        if raw in ("NaN", "-Infinity"):
            # not JSON at all: refused with the body, before any field is read
            assert err["field"] == "body" and raw.lstrip("-") in err["message"], err
        else:
            # valid JSON whose number overflows to infinity: the spec names the parameter
            assert err["field"] == "parameters" and "parameter x" in err["message"], err
    code, listed = await api("GET", "services")
    assert code == 200 and not [s for s in listed["services"] if s["name"] == "j-nf"]


async def test_notebooks_default_to_run_once(api, root):
    (root / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    code, svc = await api(
        "POST", "services", body={"name": "j-once", "kind": "notebook", "env": "nb", "path": "nb.ipynb"}
    )
    assert code == 201, svc
    code, unit = await api("GET", "services", "j-once", "unit")
    assert "\nRestart=no\n" in unit["unit"]


async def _runs(api, name, **params):
    code, data = await api("GET", "services", name, "runs", **params)
    assert code == 200, data
    return data["runs"]


async def test_every_run_is_recorded_with_its_own_log(api, root, unit_name):
    await create(
        api,
        root,
        "j-job",
        (
            "import os, sys\n"
            "n = sum(1 for _ in open('count')) if os.path.exists('count') else 0\n"
            "open('count', 'a').write('x\\n')\n"
            "print(f'attempt {n + 1}', flush=True)\n"
            "sys.exit(0 if n == 0 else 3)\n"
        ),
        restart="no",
    )
    for _ in range(2):
        code, svc = await api("POST", "services", "j-job", "start")
        assert code == 200

        async def ended():
            runs = await _runs(api, "j-job")
            return runs if runs and runs[0]["state"] in ("finished", "failed") else None

        runs = await wait_for(ended, timeout=20)
    assert len(runs) == 2
    failed, ok = runs
    assert ok["trigger"] == failed["trigger"] == "manual"
    assert ok["state"] == "finished" and ok["result"] == "success" and ok["exit_status"] == 0
    assert failed["state"] == "failed" and failed["result"] == "exit-code" and failed["exit_status"] == 3
    assert ok["duration_sec"] is not None and ok["duration_sec"] >= 0 and ok["start"] < failed["start"]
    code, log = await api("GET", "services", "j-job", "runs", failed["id"], "logs")
    assert code == 200
    messages = [e["message"] for e in log["entries"]]
    assert "attempt 2" in messages and "attempt 1" not in messages
    code, one = await api("GET", "services", "j-job", "runs", ok["id"])
    assert code == 200 and one == ok
    code, err = await api("GET", "services", "j-job", "runs", "0" * 32)
    assert code == 404
    code, err = await api("GET", "services", "j-job", "runs", "not-a-run")
    assert code == 404
    # a start from outside jupyter_condasvc (as at login, or a timer while Jupyter was down) is a run too
    systemctl("start", unit_name("j-job"))

    async def third():
        runs = await _runs(api, "j-job")
        return runs if len(runs) >= 3 and runs[0]["state"] != "running" else None

    runs = await wait_for(third, timeout=20)
    assert runs[0]["trigger"] == "boot" and runs[0]["state"] == "failed" and runs[0]["exit_status"] == 3


async def _runs_count(api, name, n):
    """At least n runs whose end was read from the journal (journald may lag, or now and then fail to
    attribute a run's end line; such a run shows "unknown"), newest first."""
    runs = [r for r in await _runs(api, name) if r["state"] in ("finished", "failed")]
    return runs if len(runs) >= n else None


async def test_restarts_and_timer_runs_are_told_apart(api, root):
    await create(
        api,
        root,
        "j-flaky",
        "import sys\nsys.exit(2)\n",
        restart="on-failure",
        restart_sec=0.2,
        start_limit_burst=3,
        start_limit_interval_sec=60,
    )
    await api("POST", "services", "j-flaky", "start")

    async def limited():
        code, svc = await api("GET", "services", "j-flaky")
        return svc["status"]["start_limit_hit"]

    await wait_for(limited, timeout=30)
    runs = await _runs(api, "j-flaky")
    assert [r["trigger"] for r in runs] == ["restart", "restart", "manual"], runs
    assert all(r["state"] == "failed" and r["exit_status"] == 2 for r in runs)
    await create(api, root, "j-ticker", "print('tick')\n", schedule="*:*:0/2", restart="no")
    code, _ = await api("POST", "services", "j-ticker", "resume")
    runs = await wait_for(lambda: _runs_count(api, "j-ticker", 2), timeout=30)
    assert {r["trigger"] for r in runs} == {"timer"} and all(r["state"] == "finished" for r in runs)
    assert (await api("DELETE", "services", "j-ticker"))[0] == 204


async def test_scheduled_failing_notebook_keeps_a_copy_and_a_log_per_run(api, root):
    write_failing_notebook(
        root / "fails.ipynb", "import os\nprint('run', os.environ.get('INVOCATION_ID'))", "print('never')"
    )
    code, svc = await api(
        "POST",
        "services",
        body={"name": "j-nbfail", "kind": "notebook", "env": "nb", "path": "fails.ipynb", "schedule": "*:*:0/5"},
    )
    assert code == 201, svc
    code, _ = await api("POST", "services", "j-nbfail", "start")
    runs = await wait_for(lambda: _runs_count(api, "j-nbfail", 3), timeout=120, interval=0.5)
    code, _ = await api("POST", "services", "j-nbfail", "pause")
    assert code == 200
    done = [r for r in runs if r["state"] != "running"]
    assert len(done) >= 3 and all(r["state"] == "failed" and r["has_notebook"] for r in done), runs
    assert {r["trigger"] for r in done} <= {"manual", "timer"} and "timer" in {r["trigger"] for r in done}
    assert all(r["trigger"] != "restart" for r in done), "notebooks default to Restart=no"
    for r in done:
        code, copy = await api("GET", "services", "j-nbfail", "runs", r["id"], "notebook")
        assert code == 200
        assert copy["metadata"]["papermill"]["exception"] is True
        texts = [o.get("text", "") for c in copy["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        printed = "".join("".join(t) if isinstance(t, list) else t for t in texts)
        assert f"run {r['id']}" in printed, "each run's copy is its own"
        code, log = await api("GET", "services", "j-nbfail", "runs", r["id"], "logs")
        assert any("ZeroDivisionError" in e["message"] for e in log["entries"])


# -- pure parts ----------------------------------------------------------------------


def test_crash_looping_rule():
    from jupyter_condasvc.serviceview import _crash_looping

    now = 1_000_000_000_000_000
    base = {
        "ActiveState": "active",
        "SubState": "running",
        "Restart": "always",
        "Result": "exit-code",
        "StartLimitIntervalUSec": 60_000_000,
        "InactiveEnterTimestamp": now - 2_000_000,
    }
    assert _crash_looping({**base, "NRestarts": 3}, now)
    assert not _crash_looping({**base, "NRestarts": 1}, now), "one restart is not a loop"
    assert not _crash_looping({**base, "NRestarts": 3, "InactiveEnterTimestamp": now - 3600_000_000}, now), "recovered"
    assert _crash_looping({**base, "NRestarts": 2, "ActiveState": "activating", "SubState": "auto-restart"}, now)
    assert not _crash_looping({**base, "NRestarts": 5, "ActiveState": "failed"}, now), (
        "stopped: start_limit_hit says it"
    )


def test_build_runs_from_manager_entries():
    from jupyter_condasvc.runs import (
        MSG_EXITED,
        MSG_FAILED,
        MSG_RESTART_SCHEDULED,
        MSG_STARTING,
        RUN_END,
        build_runs,
    )

    a, b, c, d = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)
    s = 1_700_000_000_000_000
    entries = [
        {"MESSAGE_ID": MSG_STARTING, "USER_INVOCATION_ID": a, "JOB_ID": 7, "usec": s},
        {
            "MESSAGE_ID": RUN_END,
            "USER_INVOCATION_ID": a,
            "UNIT_RESULT": "success",
            "EXIT_CODE": "exited",
            "EXIT_STATUS": "0",
            "usec": s + 1_500_000,
        },
        {"MESSAGE_ID": MSG_STARTING, "USER_INVOCATION_ID": b, "JOB_ID": 9, "usec": s + 10_000_000},
        {
            "MESSAGE_ID": MSG_EXITED,
            "USER_INVOCATION_ID": b,
            "EXIT_CODE": "exited",
            "EXIT_STATUS": 3,
            "usec": s + 11_000_000,
        },
        {
            "MESSAGE_ID": RUN_END,
            "USER_INVOCATION_ID": b,
            "UNIT_RESULT": "exit-code",
            "EXIT_CODE": "exited",
            "EXIT_STATUS": "3",
            "usec": s + 11_000_100,
        },
        {"MESSAGE_ID": MSG_FAILED, "USER_INVOCATION_ID": b, "UNIT_RESULT": "exit-code", "usec": s + 11_000_200},
        {"MESSAGE_ID": MSG_RESTART_SCHEDULED, "USER_INVOCATION_ID": b, "usec": s + 11_200_000},
        {"MESSAGE_ID": MSG_STARTING, "USER_INVOCATION_ID": c, "JOB_ID": 10, "usec": s + 11_400_000},
        {
            "MESSAGE_ID": RUN_END,
            "USER_INVOCATION_ID": c,
            "UNIT_RESULT": "success",
            "EXIT_CODE": "killed",
            "EXIT_STATUS": "TERM",
            "usec": s + 12_000_000,
        },
        {"MESSAGE_ID": MSG_STARTING, "USER_INVOCATION_ID": d, "JOB_ID": 11, "usec": s + 20_000_000},
    ]
    runs = build_runs(entries, manual_jobs={7: s // 1_000_000}, scheduled=True, current_id=d, current_active=True)
    assert [(r.trigger, r.state, r.result) for r in runs] == [
        ("manual", "finished", "success"),
        ("timer", "failed", "exit-code"),
        ("restart", "finished", "success"),
        ("timer", "running", None),
    ]
    assert runs[0].duration_sec == 1.5 and runs[0].exit_status == 0
    assert runs[1].exit_status == 3 and runs[1].end_usec == s + 11_000_100
    assert runs[2].signal == "SIGTERM" and runs[2].exit_status is None
    # a job id seen long ago (the manager restarted and counts again) is not this run's
    late = build_runs(entries[:2], manual_jobs={7: s // 1_000_000 - 86400}, scheduled=False)
    assert late[0].trigger == "boot"
