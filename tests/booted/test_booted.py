"""On a really booted systemd (PID 1, logind): boot, linger, reboot, missed schedules, limits.

Run by ``scripts/booted-test`` (as root on the host), which prepares the
container and sets ``CONDASVC_BOOTED_*``; skipped anywhere else.  The tests
run in file order and share one container: each leaves it booted.  Figures
for the closing note (boot and reboot to a service active, the memory hog's
peak) go to ``$CONDASVC_BOOTED_FIGURES``; they are measured with systemd's
own timestamps against the host's CLOCK_MONOTONIC (no time namespace).
"""

from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get("CONDASVC_BOOTED_MACHINE"), reason="needs the booted container of scripts/booted-test"
)

TICK = """\
import time
boot = open("/proc/sys/kernel/random/boot_id").read().strip()
while True:
    print("tick", boot, flush=True)
    time.sleep(5)
"""
STAMP = """\
boot = open("/proc/sys/kernel/random/boot_id").read().strip()
print("ran", boot, flush=True)
"""
HOG = """\
import time
chunks = []
for i in range(1, 401):
    chunks.append(bytearray(1 << 20))  # 1 MiB, touched (zeroed)
    if i % 10 == 0:
        print("allocated", i, "MiB", flush=True)
    time.sleep(0.01)
print("reached 400 MiB: the limit did not hold", flush=True)
time.sleep(3600)
"""
PORT = 8899


@pytest.fixture(scope="module")
def m():
    from .machine import Machine

    machine = Machine()
    machine.boot()
    machine.wait_booted()
    return machine


def wait(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def boot_id(m) -> str:
    return m.run(["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()


def active_since(m, unit: str) -> float:
    """When (host CLOCK_MONOTONIC, seconds) the unit last became active; waits for it."""

    def props():
        p = m.user_unit(unit, "ActiveState", "ActiveEnterTimestampMonotonic")
        return p if p.get("ActiveState") == "active" and int(p.get("ActiveEnterTimestampMonotonic") or 0) else None

    return int(wait(props, what=f"{unit} active")["ActiveEnterTimestampMonotonic"]) / 1e6


def check(report, cid):
    return next(c for c in report["checks"] if c["id"] == cid)


def jupyter_answers(m) -> bool:
    code = (
        f"import urllib.request as u; r = u.urlopen('http://127.0.0.1:{PORT}/api', timeout=2); "
        "print(r.status, r.read().decode())"
    )
    r = m.as_user(["python", "-c", code], check=False)
    return r.returncode == 0 and r.stdout.startswith("200 ")


def host_report(m) -> dict:
    """GET condasvc/api/host from the jupyter-service's server, with its token."""
    servers = m.as_user(["jupyter", "server", "list", "--json"]).stdout.splitlines()
    info = next(json.loads(s) for s in servers if json.loads(s).get("port") == PORT)
    code = (
        f"import urllib.request as u; q = u.Request('http://127.0.0.1:{PORT}/condasvc/api/host', "
        f"headers={{'Authorization': 'token {info['token']}'}}); print(u.urlopen(q, timeout=10).read().decode())"
    )
    return json.loads(m.as_user(["python", "-c", code]).stdout)


def test_booted_with_logind_and_a_lingering_user(m):
    assert m.run(["systemctl", "is-active", "systemd-logind"]).stdout.strip() == "active"
    assert m.run(["loginctl", "show-user", m.user, "-p", "Linger", "--value"]).stdout.strip() == "yes"
    assert m.run(["systemctl", "is-active", f"user@{m.uid}.service"]).stdout.strip() == "active"
    assert m.sessions() == [], "nobody is logged in: the user manager runs because of linger"


def test_linger_reported_and_switched_by_the_product(m):
    assert check(m.cli_json("doctor", check=False), "linger")["ok"] is True
    off = m.cli_json("linger", "off")
    assert off == {"user": m.user, "enabled": False}
    # logind dropped the user at once (no session, no linger): its record is the file it removed
    assert m.run(["test", "-e", f"/var/lib/systemd/linger/{m.user}"], check=False).returncode == 1
    # linger off and no session: logind stops the user manager; a login session brings it back
    shell = ["machinectl", "shell", "-q", f"{m.user}@.host", f"{m.env_prefix}/bin/jupyter-condasvc"]
    report = json.loads(m.run([*shell, "doctor", "--json"], check=False).stdout)
    linger = check(report, "linger")
    assert linger["ok"] is False and "Linger is off" in linger["detail"]
    on = json.loads(m.run([*shell, "linger", "on", "--json"]).stdout)
    assert on == {"user": m.user, "enabled": True}
    assert m.run(["loginctl", "show-user", m.user, "-p", "Linger", "--value"]).stdout.strip() == "yes"
    wait(
        lambda: m.run(["systemctl", "is-active", f"user@{m.uid}.service"], check=False).stdout.strip() == "active",
        what="the user manager",
    )
    assert check(m.cli_json("doctor", check=False), "linger")["ok"] is True


def test_enabled_service_and_jupyter_service_run_again_after_reboot(m):
    m.write_file(f"{m.home}/svc/tick.py", TICK)
    svc = m.cli_json("create", "ticker", "--env", m.env_prefix, "--path", "svc/tick.py", "--enable", "--start")
    unit = svc["unit"]
    assert svc["status"]["unit_file_state"] == "enabled"
    js = m.cli("jupyter-service", "--env", m.env_prefix, "--port", str(PORT), "--root", m.home, "--wait", "90")
    assert js.returncode == 0, js.stderr
    wait(lambda: jupyter_answers(m), 90, "the jupyter-service to answer")
    host = host_report(m)
    assert host["linger"]["enabled"] is True and host["linger"]["fix"] is None
    assert host["limits"]["memory_enforced"] and host["limits"]["cpu_enforced"] and "fix" not in host["limits"]

    before = boot_id(m)
    requested = m.reboot()
    assert boot_id(m) != before
    up = active_since(m, unit)
    m.record("reboot_to_service_active_s", round(up - requested, 3))
    assert m.sessions() == [], "after the reboot nobody is logged in"
    # the service's own line from this boot, read through the product
    new = boot_id(m)
    lines = wait(lambda: logged(m, "ticker", f"tick {new}"), 30, "a tick from the new boot")
    assert lines
    assert m.cli_json("show", "ticker")["status"]["active_state"] == "active"
    wait(lambda: jupyter_answers(m), 90, "the jupyter-service to answer after the reboot")
    assert host_report(m)["linger"]["enabled"] is True


def logged(m, name, text):
    """The journal entries of service NAME (``jupyter-condasvc logs --json``) whose message contains TEXT."""
    return [e for e in map(json.loads, m.cli("logs", name, "--json").stdout.splitlines()) if text in e["message"]]


GET_HOST = """\
import json, subprocess, urllib.request as u
servers = [json.loads(line) for line in subprocess.run(["jupyter", "server", "list", "--json"], capture_output=True,
                                                       text=True, check=True).stdout.splitlines()]
info = next(s for s in servers if s["port"] == PORT)
q = u.Request(f"http://127.0.0.1:{PORT}/condasvc/api/host", headers={"Authorization": f"token {info['token']}"})
print("HOST", json.dumps(json.loads(u.urlopen(q, timeout=10).read())["linger"]), flush=True)
"""


def test_get_host_reports_linger_off_and_on(m):
    """Within one login session (it keeps the user manager and the jupyter-service up while linger is off)."""
    m.write_file(f"{m.home}/svc/gethost.py", GET_HOST.replace("PORT", str(PORT)))
    j, py = f"{m.env_prefix}/bin/jupyter-condasvc", f"{m.env_prefix}/bin/python"
    script = (
        f"export PATH={m.env_prefix}/bin:$PATH; cd; {j} linger off -q && {py} svc/gethost.py && "
        f"{j} linger on -q && {py} svc/gethost.py"
    )
    r = m.run(["machinectl", "shell", "-q", f"{m.user}@.host", "/bin/sh", "-c", script])
    seen = [
        json.loads(line.split(" ", 1)[1])
        for line in r.stdout.replace("\r", "").splitlines()
        if line.startswith("HOST ")
    ]
    assert [s["enabled"] for s in seen] == [False, True], r.stdout
    assert "enable-linger" in seen[0]["fix"] and seen[1]["fix"] is None
    assert m.run(["test", "-e", f"/var/lib/systemd/linger/{m.user}"], check=False).returncode == 0


def test_missed_persistent_schedule_runs_after_boot(m):
    m.write_file(f"{m.home}/svc/stamp.py", STAMP)
    at = m.run(["date", "-d", "+20 sec", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    svc = m.cli_json("create", "missed", "--env", m.env_prefix, "--path", "svc/stamp.py", "--schedule", at, "--enable")
    timer = svc["unit"].rsplit(".", 1)[0] + ".timer"
    assert m.user_unit(timer, "ActiveState")["ActiveState"] == "active"
    assert m.user_unit(timer, "Persistent")["Persistent"] == "yes"
    m.poweroff()
    # the host is down while the time passes
    time.sleep(25)
    started = m.boot()
    m.wait_booted()
    new = boot_id(m)
    ran = wait(lambda: logged(m, "missed", f"ran {new}"), 60, "the missed run after the boot")
    assert ran
    assert int(m.user_unit(svc["unit"], "ExecMainStartTimestampMonotonic")["ExecMainStartTimestampMonotonic"]) > 0
    ticker = m.cli_json("show", "ticker")
    m.record("boot_to_service_active_s", round(active_since(m, ticker["unit"]) - started, 3))


def test_memory_hog_is_killed_at_its_limit_and_the_product_says_why(m):
    doctor = m.cli_json("doctor", check=False)
    assert check(doctor, "cgroups")["ok"] is True, check(doctor, "cgroups")
    m.write_file(f"{m.home}/svc/hog.py", HOG)
    svc = m.cli_json("create", "hog", "--env", m.env_prefix, "--path", "svc/hog.py", "--memory-max", "50M")
    assert not [w for w in svc.get("warnings") or [] if "not enforced" in w]
    assert m.user_unit(svc["unit"], "MemoryMax")["MemoryMax"] == str(50 * 2**20)
    m.cli("start", "hog")
    # the kernel's own high-water mark of the hog's cgroup, read from the host while it lives
    cg = m.memory_cgroup(svc["unit"])
    peak, limit = 0, None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            peak = max(peak, int((cg / "memory.max_usage_in_bytes").read_text()))
            limit = int((cg / "memory.limit_in_bytes").read_text())
        except OSError:
            if m.user_unit(svc["unit"], "ActiveState")["ActiveState"] in ("failed", "inactive"):
                break
        time.sleep(0.02)
    shown = m.cli_json("show", "hog")
    status = shown["status"]
    assert status["active_state"] == "failed" and status["result"] == "signal" and status["exec_main_status"] == 9
    assert status["exit_reason"].startswith("killed for memory")
    assert "killed for memory" in m.cli("show", "hog").stdout
    assert "failed (killed for memory)" in m.cli("list").stdout
    logs = [e["message"] for e in map(json.loads, m.cli("logs", "hog", "--json").stdout.splitlines())]
    assert not any("limit did not hold" in line for line in logs)
    assert limit == 50 * 2**20 and 0 < peak <= limit
    m.record(
        "memory_hog",
        {
            "memory_max": "50M",
            "limit_bytes": limit,
            "peak_bytes": peak,
            "peak_over_limit": round(peak / limit, 3),
            "last_progress_line": next((line for line in reversed(logs) if "allocated" in line), None),
        },
    )


def test_memory_reading_is_a_real_number(m):
    shown = m.cli_json("show", "ticker")
    assert isinstance(shown["status"]["memory_current"], int) and shown["status"]["memory_current"] > 0
    # cgroup v1: systemd 252 keeps no cpuacct reading for user units, so null ("not accounted"), never 0
    cpu = shown["status"]["cpu_usage_nsec"]
    assert cpu is None or cpu > 0
    m.record("ticker_readings", {"memory_current": shown["status"]["memory_current"], "cpu_usage_nsec": cpu})
