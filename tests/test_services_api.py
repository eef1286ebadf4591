"""End to end through the REST API, against the real user manager."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from helpers import PREFIX, SYSTEMCTL_ENV, UNIT_DIR, journal, status_in, systemctl, wait_for

pytestmark = pytest.mark.systemd

SCRIPT = """\
import os, sys, time
print("hello from", os.environ["CONDA_DEFAULT_ENV"], "argv", sys.argv[1:], flush=True)
print("python", sys.executable, flush=True)
while True:
    time.sleep(0.5)
"""


def script(root: Path, name: str = "train.py", text: str = SCRIPT) -> Path:
    path = root / name
    path.write_text(text)
    return path


async def test_script_service_lifecycle(api, root, unit_name, conda_root, state_dir):
    script(root)
    code, svc = await api(
        "POST",
        "services",
        body={
            "name": "train",
            "kind": "script",
            "env": "ml",
            "path": "train.py",
            "args": ["--epochs", "3"],
            "environment": {"SECRET_TOKEN": "s3cr3t $HOME %h"},
            "description": "Train the model",
        },
    )
    assert code == 201, svc
    unit = unit_name("train")
    assert svc["unit"] == unit
    assert svc["status"]["load_state"] == "loaded"
    assert svc["status"]["active_state"] == "inactive"
    unit_file = UNIT_DIR / unit
    text = unit_file.read_text()
    python = str(conda_root / "envs" / "ml" / "bin" / "python")
    # stderr goes through systemd-cat (logged at err); the program's own words follow its "--"
    assert (
        f'ExecStart=:"/usr/bin/systemd-cat" "--identifier=train" "--stderr-priority=err" "--" "{python}" "-u" "{root / "train.py"}" "--epochs" "3"'
        in text
    )
    assert "s3cr3t" not in text, "variables must stay out of the unit text"
    env_file = state_dir / "train.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # systemctl sees the very same unit
    assert "Train the model" in systemctl("status", unit).stdout
    verify = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit_file)], capture_output=True, text=True, env=SYSTEMCTL_ENV
    )
    assert verify.returncode == 0, verify.stderr

    code, svc = await api("POST", "services", "train", "start")
    assert code == 200, svc
    assert svc["status"]["active_state"] == "active" and svc["status"]["sub_state"] == "running"
    assert svc["status"]["main_pid"]
    assert systemctl("is-active", unit).stdout.strip() == "active"
    show = systemctl("show", "-p", "MainPID", "--value", unit).stdout.strip()
    assert int(show) == svc["status"]["main_pid"]
    # the process sees the variables from the environment file, verbatim
    environ = Path(f"/proc/{svc['status']['main_pid']}/environ").read_bytes().split(b"\0")
    assert b"SECRET_TOKEN=s3cr3t $HOME %h" in environ
    assert f"PATH={conda_root}/envs/ml/bin:".encode() in b"\n".join(environ)
    # its output lands in the journal
    logged = await wait_for(lambda: _async(lambda: "hello from ml argv ['--epochs', '3']" in journal(unit)))
    assert logged
    assert svc["status"]["memory_current"] is None or svc["status"]["memory_current"] > 0

    code, svc = await api("POST", "services", "train", "restart")
    assert code == 200 and svc["status"]["active_state"] == "active"
    code, svc = await api("POST", "services", "train", "stop")
    assert code == 200 and svc["status"]["active_state"] == "inactive"
    assert systemctl("is-active", unit).stdout.strip() == "inactive"

    code, svc = await api("POST", "services", "train", "enable")
    assert code == 200 and svc["status"]["unit_file_state"] == "enabled"
    assert (UNIT_DIR / "default.target.wants" / unit).is_symlink()
    assert svc["spec"]["enabled"] is True
    code, svc = await api("POST", "services", "train", "disable")
    assert code == 200 and svc["status"]["unit_file_state"] == "disabled"
    assert not (UNIT_DIR / "default.target.wants" / unit).exists()

    code, body = await api("DELETE", "services", "train")
    assert code == 204
    assert not unit_file.exists() and not env_file.exists()
    assert systemctl("show", "-p", "LoadState", "--value", unit).stdout.strip() == "not-found"
    code, body = await api("GET", "services", "train")
    assert code == 404


async def _async(fn):
    return await asyncio.to_thread(fn)


async def test_create_enabled_and_edit(api, root, unit_name):
    script(root)
    code, svc = await api(
        "POST",
        "services",
        body={
            "name": "edit-me",
            "kind": "script",
            "env": "ml",
            "path": "train.py",
            "enabled": True,
            "restart": "always",
        },
    )
    assert code == 201, svc
    assert svc["status"]["unit_file_state"] == "enabled"
    code, svc = await api("POST", "services", "edit-me", "start")
    assert svc["status"]["active_state"] == "active"
    code, svc = await api(
        "PATCH",
        "services",
        "edit-me",
        body={"args": ["--lr", "0.1"], "restart_sec": 2, "enabled": False, "memory_max": "256M"},
    )
    assert code == 200, svc
    assert svc["spec"]["args"] == ["--lr", "0.1"] and svc["status"]["unit_file_state"] == "disabled"
    text = (UNIT_DIR / unit_name("edit-me")).read_text()
    assert '"--lr" "0.1"' in text and "RestartSec=2" in text and "MemoryMax=256M" in text
    # systemd re-read it: a restart runs the new command line
    code, svc = await api("POST", "services", "edit-me", "restart")
    pid = svc["status"]["main_pid"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--lr" in cmdline
    code, body = await api("PATCH", "services", "edit-me", body={"restart": "sometimes"})
    assert code == 400 and body["field"] == "restart"
    assert '"--lr" "0.1"' in (UNIT_DIR / unit_name("edit-me")).read_text(), "a refused edit changes nothing"
    code, body = await api("PATCH", "services", "edit-me", body={"name": "renamed"})
    assert code == 400 and body["field"] == "name"


async def test_failing_service_and_reset_failed(api, root, unit_name):
    script(root, "fail.py", "import sys\nprint('about to fail', flush=True)\nsys.exit(3)\n")
    code, svc = await api(
        "POST", "services", body={"name": "fails", "kind": "script", "env": "ml", "path": "fail.py", "restart": "no"}
    )
    assert code == 201
    await api("POST", "services", "fails", "start")
    status = await wait_for(lambda: status_in(api, "fails", "failed"))
    assert status["result"] == "exit-code" and status["exec_main_status"] == 3
    code, svc = await api("POST", "services", "fails", "reset-failed")
    assert code == 200 and svc["status"]["active_state"] == "inactive"


async def test_command_service_resolves_in_env(api, root, conda_root, unit_name):
    code, svc = await api(
        "POST",
        "services",
        body={"name": "cmd", "kind": "command", "env": "ml", "argv": ["python", "-c", "import time; time.sleep(30)"]},
    )
    assert code == 201, svc
    assert svc["resolved"]["exec_argv"][0] == str(conda_root / "envs" / "ml" / "bin" / "python")
    code, svc = await api("POST", "services", "cmd", "start")
    assert svc["status"]["sub_state"] == "running"
    code, listing = await api("GET", "services")
    assert code == 200
    assert [s["name"] for s in listing["services"]] == ["cmd"]


@pytest.mark.parametrize(
    "change,field",
    [
        ({"env": "no-such-env"}, "env"),
        ({"kind": "command", "path": None, "argv": ["definitely-not-a-command-xyz"]}, "argv"),
        ({"path": "missing.py"}, "path"),
        ({"path": "/etc/hostname"}, "path"),
        ({"cwd": "no/such/dir"}, "cwd"),
        ({"cwd": "ro"}, "cwd"),
        ({"name": "bad name"}, "name"),
        ({"restart_sec": "x"}, "restart_sec"),
        ({"cpu_quota": "fast"}, "cpu_quota"),
    ],
)
async def test_preflight_errors_name_the_field(api, root, change, field):
    script(root)
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)
    body = {"name": "pre", "kind": "script", "env": "ml", "path": "train.py", **change}
    body = {k: v for k, v in body.items() if v is not None}
    code, err = await api("POST", "services", body=body)
    assert code == 400, err
    assert err["field"] == field, err
    assert err["message"]
    assert not list(UNIT_DIR.glob(f"{PREFIX}pre*")), "a refused create writes nothing"


async def test_command_not_found_message(api, root):
    code, err = await api(
        "POST", "services", body={"name": "nf", "kind": "command", "env": "ml", "argv": ["nosuchtool"]}
    )
    assert code == 400
    assert "Command not found" in err["message"] and "conda install -n ml nosuchtool" in err["message"]


async def test_name_conflicts_and_foreign_units(api, root, unit_name):
    script(root)
    spec = {"name": "dup", "kind": "script", "env": "ml", "path": "train.py"}
    assert (await api("POST", "services", body=spec))[0] == 201
    code, err = await api("POST", "services", body=spec)
    assert code == 409 and err["field"] == "name"
    # a hand-written unit with a name in our namespace is not ours
    foreign = UNIT_DIR / unit_name("handmade")
    original = "[Unit]\nDescription=written by hand\n\n[Service]\nExecStart=/bin/sleep 60\n"
    foreign.write_text(original)
    systemctl("daemon-reload")
    code, err = await api("POST", "services", body={**spec, "name": "handmade"})
    assert code == 409
    for method, path in (
        ("GET", ()),
        ("PATCH", ()),
        ("DELETE", ()),
        ("POST", ("start",)),
        ("POST", ("stop",)),
        ("GET", ("unit",)),
    ):
        body = {"args": ["x"]} if method == "PATCH" else None
        code, err = await api(method, "services", "handmade", *path, body=body)
        assert code == 403, (method, path, code, err)
    assert foreign.read_text() == original
    assert systemctl("is-active", unit_name("handmade")).stdout.strip() == "inactive"
    code, listing = await api("GET", "services")
    assert [s["name"] for s in listing["services"]] == ["dup"]


async def test_unknown_service_and_action(api, jp_fetch):
    assert (await api("GET", "services", "nope"))[0] == 404
    assert (await api("POST", "services", "nope", "start"))[0] == 404
    assert (await api("DELETE", "services", "nope"))[0] == 404
    # the action route is built from ACTIONS: anything else is the JSON 404 that lists them
    resp = await jp_fetch(
        "condasvc", "api", "services", "nope", "frobnicate", method="POST", body=b"{}", raise_error=False
    )
    assert resp.code == 404 and "reset-and-start" in json.loads(resp.body)["message"]


async def test_bad_json_body(api, jp_fetch):
    resp = await jp_fetch("condasvc", "api", "services", method="POST", body="{not json", raise_error=False)
    assert resp.code == 400


async def test_environments_and_preview(api, root, conda_root):
    code, body = await api("GET", "environments")
    assert code == 200
    by_name = {e["name"]: e for e in body["environments"]}
    assert {"base", "ml", "nb"} <= set(by_name)
    assert by_name["nb"]["has_ipykernel"] is True and by_name["ml"]["has_ipykernel"] is False
    assert by_name["ml"]["python"] == str(conda_root / "envs" / "ml" / "bin" / "python")
    script(root)
    code, body = await api(
        "POST",
        "preview",
        body={"name": "pv", "kind": "script", "env": "ml", "path": "train.py", "environment": {"K": "v"}},
    )
    assert code == 200 and "ExecStart=" in body["unit"] and body["variables"] == ["K"]
    assert not list(UNIT_DIR.glob(f"{PREFIX}pv*")), "preview writes nothing"


async def test_unit_endpoint(api, root, unit_name):
    script(root)
    await api("POST", "services", body={"name": "u", "kind": "script", "env": "ml", "path": "train.py"})
    code, body = await api("GET", "services", "u", "unit")
    assert code == 200 and body["unit_name"] == unit_name("u")
    assert body["unit"] == (UNIT_DIR / unit_name("u")).read_text()


async def test_host_report(api):
    code, host = await api("GET", "host")
    assert code == 200
    assert host["manager"]["reachable"] is True
    version = systemctl("--version").stdout.split()[1]
    assert host["manager"]["version"].startswith(version)
    assert host["linger"]["enabled"] == os.path.exists(f"/var/lib/systemd/linger/{host['user']}")
    assert host["journal"]["persistent"] == os.path.isdir("/var/log/journal")
    assert isinstance(host["limits"]["memory_enforced"], bool)


async def test_every_rendered_unit_passes_systemd_analyze_verify(api, root, unit_name, jp_serverapp):
    weird = root / "dir with spaces %i $HOME"
    weird.mkdir()
    script(weird, "odd name 'q'.py")
    specs = [
        {
            "name": "v-limits",
            "kind": "script",
            "env": "ml",
            "path": "train.py",
            "memory_max": "512M",
            "cpu_quota": "150%",
            "restart": "always",
            "restart_sec": 1.5,
            "start_limit_burst": 3,
            "start_limit_interval_sec": 30,
            "enabled": True,
        },
        {
            "name": "v-cmd",
            "kind": "command",
            "env": "ml",
            "argv": ["python", "-c", "print('a; b', \"q\")", ";", "%h", "$USER", "\\", ""],
            "description": '100% "quoted" \\ back $PATH %n',
        },
        {
            "name": "v-weird",
            "kind": "script",
            "env": "ml",
            "path": str(weird / "odd name 'q'.py"),
            "cwd": str(weird),
            "environment": {"A": 'it\'s "q" $x %h \\ `cmd`', "B": "multi\nline"},
        },
        {"name": "v-base", "kind": "command", "env": "base", "argv": ["python", "-V"], "restart": "no"},
    ]
    script(root)
    units = []
    for spec in specs:
        code, body = await api("POST", "services", body=spec)
        assert code == 201, body
        units.append(str(UNIT_DIR / unit_name(spec["name"])))
    verify = subprocess.run(
        ["systemd-analyze", "--user", "verify", *units], capture_output=True, text=True, env=SYSTEMCTL_ENV
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    # and systemd read the odd values back exactly (its own D-Bus properties)
    systemd = jp_serverapp.web_app.settings["condasvc_systemd"]
    props = await systemd.get_unit_properties(unit_name("v-cmd"), fresh=True)
    assert props["Description"] == '100% "quoted" \\ back $PATH %n'
    props = await systemd.get_unit_properties(unit_name("v-weird"), fresh=True)
    assert props["WorkingDirectory"] == str(weird), props.get("LoadError")
