"""doctor: the truth about this host, and a healthy host described through injected paths."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

import pytest
from traitlets.config import Config

from condaenv import make_conda_env
from helpers import DOCTOR_CHECKS, PREFIX, UNIT_DIR
from jupyter_condasvc import host
from jupyter_condasvc.app import CondaSvcApp
from jupyter_condasvc.doctor import HostPaths, browser_settings, run_doctor

pytestmark = pytest.mark.systemd
USER = pwd.getpwuid(os.getuid()).pw_name


def build(conda_roots, state_dir: Path, root: Path):
    c = Config()
    c.CondaSvcApp.unit_dir = str(UNIT_DIR)
    c.CondaSvcApp.unit_prefix = PREFIX
    c.CondaSvcApp.state_dir = str(state_dir)
    c.EnvironmentFinder.conda_roots = [str(r) for r in conda_roots]
    c.EnvironmentFinder.use_conda_executable = False
    return CondaSvcApp(config=c).build_services(str(root))


def by_id(report):
    return {c["id"]: c for c in report["checks"]}


async def test_doctor_on_this_host(api):
    """What is really true here: a reachable manager; no logind, so no linger; limits not enforced."""
    code, report = await api("GET", "doctor")
    assert code == 200
    checks = by_id(report)
    assert [c["id"] for c in report["checks"]] == list(DOCTOR_CHECKS)
    assert checks["manager"]["ok"] is True and checks["manager"]["fix"] is None
    assert checks["conda"]["ok"] is True and "base, ml, nb" in checks["conda"]["detail"]
    assert checks["ipykernel"]["ok"] is None and "conda install -n base ipykernel" in checks["ipykernel"]["fix"]
    linger = checks["linger"]
    if not host.linger_enabled():
        assert linger["ok"] is False
        if not host.logind_available():
            assert "no systemd-logind" in linger["detail"] and "loginctl enable-linger" in linger["fix"]
            assert "cannot be enabled here" in linger["detail"]
    if "memory" not in (checks["cgroups"]["detail"].split("controllers: ", 1)[1]):
        assert checks["cgroups"]["ok"] is False
        assert "Delegate=cpu cpuset io memory pids" in checks["cgroups"]["fix"]
    assert report["ok"] is (not any(c["ok"] is False for c in report["checks"]))


async def test_get_host_says_what_doctor_says(api):
    """GET host (the sidebar's banners) takes each fix from the doctor's check: one source of the words."""
    code, host_report = await api("GET", "host")
    assert code == 200
    code, report = await api("GET", "doctor")
    checks = by_id(report)
    assert host_report["manager"]["reachable"] is checks["manager"]["ok"] is True
    assert host_report["linger"]["enabled"] is checks["linger"]["ok"]
    assert host_report["linger"]["fix"] == checks["linger"]["fix"]
    assert host_report["limits"].get("fix") == checks["cgroups"]["fix"]
    assert host_report["journal"]["fix"] == checks["journal"]["fix"]
    assert host_report["journal"]["message"] in checks["journal"]["detail"]
    assert host_report["journal"]["diagnosis"]["state"] in checks["journal"]["detail"]


async def test_healthy_host(tmp_path):
    """Every check passes when the host is right (the facts a non-root test cannot create are injected)."""
    linger = tmp_path / "linger"
    linger.mkdir()
    (linger / USER).touch()
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "1" / "comm").write_text("systemd\n")
    (proc / "412").mkdir()
    (proc / "412" / "comm").write_text("systemd-logind\n")
    machine_id = "0123456789abcdef0123456789abcdef"
    (tmp_path / "machine-id").write_text(machine_id + "\n")
    journal_dir = tmp_path / "journal" / machine_id
    journal_dir.mkdir(parents=True)
    (journal_dir / f"user-{os.getuid()}.journal").write_bytes(b"")
    config = tmp_path / "jupyter"
    config.mkdir()
    (config / "jupyter_server_config.py").write_text("c = get_config()\nc.ServerApp.open_browser = False\n")
    conda = make_conda_env(tmp_path / "miniforge3", ipykernel=True)
    (conda / "envs").mkdir()
    (conda / "pkgs").mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "job.py").write_text("import time; time.sleep(60)\n")
    services = build([conda], tmp_path / "state", root)
    paths = HostPaths(
        linger_dir=linger,
        proc=proc,
        pid1_comm=proc / "1" / "comm",
        journal={
            "persistent_root": tmp_path / "journal",
            "runtime_root": tmp_path / "run-journal",
            "machine_id_file": tmp_path / "machine-id",
            "conf": tmp_path / "journald.conf",
            "conf_dirs": (),
        },
        config_paths=[str(config)],
        environ={"PATH": "/usr/bin:/bin"},
        cgroup_controllers=["cpu", "io", "memory", "pids"],
    )
    try:
        await services.create({"name": "healthy", "kind": "script", "env": "base", "path": "job.py"})
        report = await run_doctor(services, paths)
        bad = [c for c in report["checks"] if c["ok"] is not True]
        assert not bad, bad
        assert report["ok"] is True
        checks = by_id(report)
        assert "survive logout" in checks["linger"]["detail"]
        assert "enforced" in checks["cgroups"]["detail"]
        assert "ServerApp.open_browser = False" in checks["open-browser"]["detail"]
        assert all(c["fix"] is None for c in report["checks"])

        # now break things, one per check
        (linger / USER).unlink()
        (proc / "412" / "comm").write_text("bash\n")
        shutil.rmtree(root)  # the working directory of 'healthy'
        (config / "jupyter_server_config.py").write_text("c.ServerApp.open_browser = True\n")
        paths.cgroup_controllers = ["pids"]
        report = await run_doctor(services, paths)
        checks = by_id(report)
        assert checks["linger"]["ok"] is False and "PID 1 is systemd" in checks["linger"]["detail"]
        assert checks["workdirs"]["ok"] is False and "healthy:" in checks["workdirs"]["detail"]
        assert "does not exist" in checks["workdirs"]["detail"]
        assert checks["open-browser"]["ok"] is False and "open_browser = True" in checks["open-browser"]["detail"]
        assert checks["cgroups"]["ok"] is False and "memory, cpu" in checks["cgroups"]["detail"]
        assert report["ok"] is False and all(c["fix"] for c in report["checks"] if c["ok"] is False)
    finally:
        await services.delete("healthy")
        await services.systemd.close()


async def test_linger_off_with_logind(tmp_path):
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "comm").write_text("systemd-logind\n")
    from jupyter_condasvc.doctor import linger_check

    c = linger_check(USER, HostPaths(linger_dir=tmp_path / "none", proc=proc))
    assert c["ok"] is False and c["fix"].startswith(f"`loginctl enable-linger {USER}`")


async def test_vanished_environment_and_interpreter(tmp_path, conda_root):
    env = make_conda_env(tmp_path / "miniforge3")
    (env / "envs").mkdir()
    other = make_conda_env(env / "envs" / "gone")
    root = tmp_path / "root"
    root.mkdir()
    (root / "job.py").write_text("print(1)\n")
    services = build([env], tmp_path / "state", root)
    try:
        await services.create({"name": "orphan", "kind": "script", "env": "gone", "path": "job.py"})
        await services.create({"name": "no-python", "kind": "script", "env": "base", "path": "job.py"})
        (env / "bin" / "python").unlink()
        shutil.rmtree(other)
        report = await run_doctor(services, HostPaths(config_paths=[], environ={}))
        check = by_id(report)["service-envs"]
        assert check["ok"] is False
        assert f"orphan: environment {other} is gone" in check["detail"]
        assert f"no-python: {env}/bin/python is missing" in check["detail"]
        assert "export-env NAME --registered" in check["fix"]
    finally:
        for name in ("orphan", "no-python"):
            await services.delete(name)
        await services.systemd.close()


async def test_jupyter_services_without_no_browser(tmp_path, conda_root):
    env = conda_root / "envs" / "ml"
    fake = env / "bin" / "jupyter-lab"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    root = tmp_path / "root"
    root.mkdir()
    services = build([conda_root], tmp_path / "state", root)
    try:
        await services.create({"name": "lab", "kind": "command", "env": "ml", "argv": ["jupyter-lab", "--port=9999"]})
        await services.create(
            {"name": "lab-ok", "kind": "command", "env": "ml", "argv": ["jupyter-lab", "--no-browser"]}
        )
        report = await run_doctor(services, HostPaths(config_paths=[], environ={"DISPLAY": ":0"}))
        check = by_id(report)["open-browser"]
        assert check["ok"] is False and "without --no-browser: lab." in check["detail"]
    finally:
        for name in ("lab", "lab-ok"):
            await services.delete(name)
        await services.systemd.close()
        fake.unlink()


def test_browser_settings_read_py_json_and_conf_d(tmp_path):
    (tmp_path / "jupyter_notebook_config.json").write_text('{"NotebookApp": {"open_browser": true}}')
    (tmp_path / "jupyter_server_config.py").write_text(
        "# c.ServerApp.open_browser = True\nc.ServerApp.open_browser = False\n"
    )
    (tmp_path / "jupyter_server_config.d").mkdir()
    (tmp_path / "jupyter_server_config.d" / "x.json").write_text('{"ServerApp": {"open_browser": false}}')
    found = browser_settings([str(tmp_path)])
    assert [(Path(f["file"]).name, f["class"], f["value"]) for f in found] == [
        ("jupyter_server_config.py", "ServerApp", False),
        ("x.json", "ServerApp", False),
        ("jupyter_notebook_config.json", "NotebookApp", True),
    ]


def test_cli_doctor_on_this_host(tmp_path, conda_root, state_dir):
    from test_cli import Cli, write_config

    write_config(tmp_path / "cfg", [conda_root], state_dir)
    cli = Cli(tmp_path / "cfg", tmp_path)
    out = cli("doctor")
    lines = out.stdout.splitlines()
    assert "[ok  ] systemd user manager reachable" in lines
    failed = [line for line in lines if line.startswith("[FAIL]")]
    assert out.returncode == (1 if failed else 0)  # exit 1 when a check fails
    if not host.linger_enabled():
        assert "[FAIL] linger enabled" in lines
        assert any(line.strip().startswith("fix:") and "enable-linger" in line for line in lines)
    assert out.stdout.rstrip().endswith(".") and "problem(s)" in lines[-1]
