"""``jupyter condasvc`` as a real subprocess, against the real user manager.

The CLI reads its settings the way the server extension does: from
``jupyter_server_config.json`` in the Jupyter config path (here a private
``JUPYTER_CONFIG_DIR`` holding this run's unit prefix, state directory and
conda root), with ``--Class.trait=value`` overrides on top.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
import yaml

from helpers import PREFIX, REAL_HOME, SYSTEMCTL_ENV, UNIT_DIR, free_port, journal, systemctl

pytestmark = pytest.mark.systemd

SCRIPT = """\
import os, sys, time
print("hello from", os.environ["CONDA_DEFAULT_ENV"], "argv", sys.argv[1:], "token", os.environ.get("TOKEN"), flush=True)
print("<3>an error line", flush=True)  # systemd reads the <3> prefix as priority err
i = 0
while True:
    i += 1
    print("tick", i, flush=True)
    time.sleep(0.3)
"""


class Cli:
    """Runs ``python -m jupyter_condasvc.cli`` with this run's configuration."""

    def __init__(self, config_dir: Path, root: Path) -> None:
        self.root = root
        self.env = {
            **SYSTEMCTL_ENV,
            "HOME": str(REAL_HOME),
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_PLATFORM_DIRS": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("CONDA_DEFAULT_ENV", None)
        if os.environ.get("PYTHONPATH"):  # a run from a copy of the checkout imports that copy
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    def argv(self, *args: str) -> list:
        return [sys.executable, "-m", "jupyter_condasvc.cli", *args]

    def __call__(
        self, *args: str, input: Optional[str] = None, cwd: Optional[Path] = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*args),
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=str(cwd or self.root),
            timeout=timeout,
        )

    def json(self, *args: str, **kw) -> dict:
        out = self(*args, "--json", **kw)
        assert out.returncode == 0, (args, out.returncode, out.stderr)
        return json.loads(out.stdout)


def write_config(config_dir: Path, conda_roots, state_dir: Path, **extra) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    cfg = {
        "CondaSvcApp": {
            "unit_dir": str(UNIT_DIR),
            "unit_prefix": PREFIX,
            "state_dir": str(state_dir),
            "default_restart_sec": 0.2,
        },
        "EnvironmentFinder": {"conda_roots": [str(r) for r in conda_roots], "use_conda_executable": False},
    }
    for cls, values in extra.items():
        cfg.setdefault(cls, {}).update(values)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(cfg))


@pytest.fixture
def cli_root(tmp_path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "train.py").write_text(SCRIPT)
    return root


@pytest.fixture
def cli(tmp_path, conda_root, state_dir, cli_root) -> Cli:
    write_config(tmp_path / "jupyter-config", [conda_root], state_dir)
    return Cli(tmp_path / "jupyter-config", cli_root)


def snapshot(state_dir: Path):
    """What a failed command must not change: our unit files and the state directory."""
    units = sorted((p.name, p.read_bytes()) for p in UNIT_DIR.glob(f"{PREFIX}*"))
    state = (
        sorted((str(p.relative_to(state_dir)), p.read_bytes()) for p in state_dir.rglob("*") if p.is_file())
        if state_dir.exists()
        else []
    )
    return units, state


def wait_until(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")
        time.sleep(interval)


# -- help and discovery -------------------------------------------------------------
def test_jupyter_condasvc_entry_point():
    """`jupyter condasvc` finds the jupyter-condasvc entry point next to jupyter."""
    bindir = Path(sys.executable).parent
    jupyter = bindir / "jupyter"
    assert (bindir / "jupyter-condasvc").exists(), "pip install -e . installs the jupyter-condasvc entry point"
    out = subprocess.run(
        [str(jupyter), "condasvc", "--help"],
        capture_output=True,
        text=True,
        env={**SYSTEMCTL_ENV, "PATH": f"{bindir}:{SYSTEMCTL_ENV.get('PATH', '')}"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for command in ("envs", "list", "create", "logs", "unit", "export-env", "doctor", "jupyter-service"):
        assert command in out.stdout
    assert "exit codes" in out.stdout and "5  the systemd user manager cannot be reached" in out.stdout


def test_envs(cli, conda_root):
    data = cli.json("envs")
    names = {e["name"]: e for e in data["environments"]}
    assert {"base", "ml", "nb"} <= set(names)
    assert names["nb"]["has_ipykernel"] and not names["ml"]["has_ipykernel"]
    table = cli("envs")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "PYTHON", "IPYKERNEL", "PREFIX"]
    assert str(conda_root / "envs" / "ml") in table.stdout


# -- the life of a service ------------------------------------------------------------
def test_script_service_lifecycle(cli, cli_root, conda_root, state_dir, unit_name):
    unit = unit_name("train")
    created = cli(
        "create",
        "train",
        "--env",
        "ml",
        "--path",
        "train.py",
        "--arg=--epochs",
        "--arg=3",
        "--var",
        "TOKEN=s3cr3t $HOME",
        "--description",
        "Train the model",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    assert "creating train" in created.stderr  # progress on stderr, JSON alone on stdout
    svc = json.loads(created.stdout)
    assert svc["unit"] == unit and svc["spec"]["kind"] == "script"
    assert svc["resolved"]["exec_argv"] == [
        str(conda_root / "envs" / "ml" / "bin" / "python"),
        "-u",
        str(cli_root / "train.py"),
        "--epochs",
        "3",
    ]
    text = (UNIT_DIR / unit).read_text()
    assert "s3cr3t" not in text and "Train the model" in text
    assert "Train the model" in systemctl("status", unit).stdout

    shown = cli("show", "train")
    assert shown.returncode == 0
    assert "inactive (dead)" in shown.stdout and "TOKEN" in shown.stdout and "s3cr3t" not in shown.stdout
    assert cli("show", "train", "--unit").stdout == text

    listed = cli("list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split()[:4] == ["NAME", "KIND", "ENV", "STATE"]
    assert any(line.split()[:3] == ["train", "script", "ml"] for line in listed.stdout.splitlines())

    started = cli("start", "train")
    assert started.returncode == 0, started.stderr
    assert "starting train" in started.stderr and "active (running)" in started.stdout
    assert systemctl("is-active", unit).stdout.strip() == "active"
    wait_until(lambda: "hello from ml argv ['--epochs', '3'] token s3cr3t $HOME" in journal(unit))

    logs = cli("logs", "train", "-n", "500")
    assert logs.returncode == 0
    assert "hello from ml" in logs.stdout
    errors = cli("logs", "train", "-p", "err", "--json")
    entries = [json.loads(line) for line in errors.stdout.splitlines()]
    assert entries and all(e["priority"] <= 3 for e in entries)
    assert any("an error line" in e["message"] for e in entries)
    since = cli("logs", "train", "--since", "-1h", "--grep", "HELLO FROM")
    assert since.returncode == 0, since.stderr
    assert "hello from ml" not in since.stdout, since.stdout  # capitals: case-sensitive

    assert cli("restart", "train").returncode == 0
    assert cli("enable", "train").returncode == 0
    assert systemctl("is-enabled", unit).stdout.strip() == "enabled"
    assert cli.json("disable", "train")["status"]["unit_file_state"] == "disabled"

    edited = cli("edit", "train", "--var", "OTHER=1", "--memory-max", "1G", "--", "--epochs", "5")
    assert edited.returncode == 0, edited.stderr
    assert "restart train" in edited.stdout  # it is running the old command line
    spec = cli.json("show", "train")["spec"]
    assert spec["args"] == ["--epochs", "5"] and spec["environment"] == {"TOKEN": "s3cr3t $HOME", "OTHER": "1"}
    assert spec["memory_max"] == "1G"
    unset = cli("edit", "train", "--unset", "memory_max", "--unset-var", "OTHER")
    assert unset.returncode == 0, unset.stderr
    spec = cli.json("show", "train")["spec"]
    assert spec["memory_max"] is None and spec["environment"] == {"TOKEN": "s3cr3t $HOME"}

    assert cli("stop", "train").returncode == 0
    assert systemctl("is-active", unit).stdout.strip() == "inactive"
    deleted = cli("delete", "train")
    assert deleted.returncode == 0 and "Deleted train" in deleted.stdout
    assert not (UNIT_DIR / unit).exists()
    assert not list(state_dir.rglob("train*"))
    gone = cli("show", "train")
    assert gone.returncode == 3 and "no service named 'train'" in gone.stderr


def test_create_from_spec_files(cli, cli_root, tmp_path, unit_name):
    (tmp_path / "api.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "from-yaml",
                "kind": "command",
                "env": "ml",
                "argv": ["python", "-c", "print('yaml spec')"],
                "restart": "no",
                "environment": {"A": "1"},
            }
        )
    )
    out = cli("create", "-f", str(tmp_path / "api.yaml"), "--var", "B=2", "--description", "flags win")
    assert out.returncode == 0, out.stderr
    spec = cli.json("show", "from-yaml")["spec"]
    assert spec["environment"] == {"A": "1", "B": "2"} and spec["description"] == "flags win"
    as_json = json.dumps({"name": "from-json", "env": "ml", "path": "train.py"})
    out = cli("create", "-f", "-", input=as_json)
    assert out.returncode == 0, out.stderr
    assert cli.json("show", "from-json")["spec"]["kind"] == "script"
    # a command after "--", kind guessed
    out = cli("create", "after-dashes", "--env", "ml", "--json", "--", "python", "-c", "print(1)", "--not-ours=1")
    assert out.returncode == 0, out.stderr
    svc = json.loads(out.stdout)
    assert svc["spec"]["kind"] == "command" and svc["spec"]["argv"][-1] == "--not-ours=1"
    for name in ("from-yaml", "from-json", "after-dashes"):
        assert cli("delete", name).returncode == 0


def test_failed_start_reset_failed_and_run_now(cli, cli_root, unit_name):
    (cli_root / "crash.py").write_text("import sys; print('crashing'); sys.exit(3)\n")
    assert cli("create", "crash", "--env", "ml", "--path", "crash.py", "--restart", "no").returncode == 0
    started = cli("start", "crash")
    # a simple service's start job is done when it forks; the crash comes right after
    assert started.returncode in (0, 1)
    wait_until(lambda: systemctl("is-failed", unit_name("crash")).stdout.strip() == "failed")
    shown = cli("show", "crash")
    assert "failed (exit-code)" in shown.stdout
    reset = cli("reset-failed", "crash")
    assert reset.returncode == 0 and "inactive" in reset.stdout

    # it outlives its line a moment, so journald can attribute the line to the unit (docs/troubleshooting.md)
    (cli_root / "once.py").write_text("import time\nprint('ran once', flush=True)\ntime.sleep(0.3)\n")
    assert (
        cli("create", "nightly", "--env", "ml", "--path", "once.py", "--schedule", "daily", "--enable").returncode == 0
    )
    assert systemctl("is-active", f"{PREFIX}nightly.timer").stdout.strip() == "active"
    ran = cli("run-now", "nightly")
    assert ran.returncode == 0, ran.stderr
    wait_until(lambda: "ran once" in journal(unit_name("nightly")))
    for name in ("crash", "nightly"):
        assert cli("delete", name).returncode == 0


def test_unit_preview_writes_nothing(cli, state_dir, conda_root):
    before = snapshot(state_dir)
    out = cli("unit", "preview-only", "--env", "ml", "--path", "train.py", "--var", "SECRET=x", "--memory-max", "1G")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"# {PREFIX}preview-only.service\n")
    assert 'ExecStart=:"' in out.stdout and f'"--" "{conda_root}/envs/ml/bin/python" "-u"' in out.stdout
    assert "MemoryMax=1G" in out.stdout and "SECRET" in out.stdout and "=x" not in out.stdout
    assert "not enforced" in out.stderr  # no delegated controllers on this host
    data = cli.json("unit", "preview-only", "--env", "ml", "--path", "train.py", "--schedule", "hourly")
    assert data["timer"] and "OnCalendar=hourly" in data["timer"] and data["next_runs"]
    assert snapshot(state_dir) == before


def test_restart_on_change_flags(cli, cli_root, unit_name):
    name = "watched"
    path_unit = UNIT_DIR / unit_name(name).replace(".service", ".path")
    assert cli("create", name, "--env", "ml", "--path", "train.py", "--restart-on-change").returncode == 0
    try:
        assert cli.json("show", name)["spec"]["restart_on_change"] is True
        assert str(cli_root / "train.py") in path_unit.read_text()
        assert cli("edit", name, "--no-restart-on-change").returncode == 0
        assert cli.json("show", name)["spec"]["restart_on_change"] is False
        assert not path_unit.exists()
    finally:
        assert cli("delete", name).returncode == 0


def test_logs_follow_until_ctrl_c(cli, cli_root, unit_name):
    assert cli("create", "ticker", "--env", "ml", "--path", "train.py", "--start").returncode == 0
    proc = subprocess.Popen(
        cli.argv("logs", "ticker", "-f", "-n", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env,
        cwd=str(cli_root),
    )
    try:
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            ticks = [int(x.rsplit("tick ", 1)[1]) for x in seen if "tick " in x]
            if len(ticks) >= 4:
                break
        assert len(ticks) >= 4, seen
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), "no gap, no duplicate while following"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert cli("delete", "ticker").returncode == 0


# -- bad arguments: a message, a documented non-zero exit, nothing changed ---------------------
BAD = [
    (["frobnicate"], 2, "invalid choice"),
    (["create", "x", "--path", "train.py"], 2, "Field 'env' is required"),
    (["create", "x", "--env", "ml"], 2, "Say what to run"),
    (["create", "x", "--env", "ml", "--path", "train.py", "--memory-max", "lots"], 2, "memory_max"),
    (["create", "x", "--env", "nope", "--path", "train.py"], 2, "No environment named 'nope'"),
    (["create", "x", "--env", "ml", "--path", "/etc/passwd"], 2, "outside the server's root directory"),
    (["create", "x", "--env", "ml", "--path", "missing.py"], 2, "does not exist"),
    (["create", "x", "--env", "ml", "--path", "train.py", "--var", "NOEQUALS"], 2, "KEY=VALUE"),
    (["create", "bad name", "--env", "ml", "--path", "train.py"], 2, "name must be"),
    (["create", "x", "--env", "ml", "--", "no-such-command-here"], 2, "Command not found"),
    (["create", "x", "--env", "ml", "--path", "train.py", "--restart-sec", "soon"], 2, "invalid float value"),
    (["create", "-f", "/nonexistent.yaml"], 2, "Cannot read the spec file"),
    (["create", "x", "--env", "nb", "--path", "train.py", "--kind", "notebook"], 2, ".ipynb"),
    (["show", "ghost"], 3, "no service named 'ghost'"),
    (["start", "ghost"], 3, "no service named 'ghost'"),
    (["delete", "ghost"], 3, "no service named 'ghost'"),
    (["logs", "ghost"], 3, "no service named 'ghost'"),
    (["edit", "ghost", "--arg", "1"], 3, "no service named 'ghost'"),
    (["export-env", "ghost"], 3, "no service named 'ghost'"),
    (["export-env"], 2, "Give a service NAME or --env ENV"),
    (["export-env", "--env", "nope"], 3, "No environment named 'nope'"),
    (["logs", "ghost", "-p", "loud"], 3, "no service named 'ghost'"),
    (["jupyter-service", "--port", "0"], 2, "not between 1 and 65535"),
    (["jupyter-service", "--env", "ml"], 2, "neither JupyterLab nor Jupyter Server"),
    (["list", "--", "extra"], 2, "takes no command after '--'"),
]


@pytest.mark.parametrize("args,code,message", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_arguments_change_nothing(cli, state_dir, args, code, message):
    before = snapshot(state_dir)
    out = cli(*args)
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert message in out.stderr, out.stderr
    assert snapshot(state_dir) == before


def test_conflicts_exit_4(cli, state_dir, unit_name):
    assert cli("create", "taken", "--env", "ml", "--path", "train.py").returncode == 0
    before = snapshot(state_dir)
    again = cli("create", "taken", "--env", "ml", "--path", "train.py", "--json")
    assert again.returncode == 4 and "already exists" in again.stderr
    assert json.loads(again.stdout)["reason"] == "Conflict"  # --json: the error too, for scripts
    foreign = UNIT_DIR / unit_name("foreign")
    foreign.write_text("[Service]\nExecStart=/bin/true\n")
    try:
        out = cli("create", "foreign", "--env", "ml", "--path", "train.py")
        assert out.returncode == 4 and "not created by jupyter_condasvc" in out.stderr
        assert foreign.read_text() == "[Service]\nExecStart=/bin/true\n"
    finally:
        foreign.unlink()
    assert snapshot(state_dir) == before
    nothing = cli("edit", "taken")
    assert nothing.returncode == 2 and "Nothing to change" in nothing.stderr
    assert cli("delete", "taken").returncode == 0


def test_manager_unreachable_exit_5_but_preview_works(cli, tmp_path, state_dir):
    dead = f"--SystemdManager.bus_address=unix:path={tmp_path}/no-bus-here"
    out = cli("list", dead)
    assert out.returncode == 5
    assert "not reachable" in out.stderr
    out = cli("create", "x", "--env", "ml", "--path", "train.py", dead)
    assert out.returncode == 5
    assert not list(state_dir.rglob("x*"))
    preview = cli("unit", "x", "--env", "ml", "--path", "train.py", dead)
    assert preview.returncode == 0 and "ExecStart=" in preview.stdout
    doctor = cli.json("doctor", dead) if False else cli("doctor", "--json", dead)
    assert doctor.returncode == 1
    checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["manager"]["ok"] is False and "Binder" in checks["manager"]["fix"]


def test_config_overrides_on_the_command_line(cli, tmp_path, conda_root):
    """--Class.trait=value beats the config file, as for jupyter server."""
    other = tmp_path / "other-state"
    out = cli("create", "elsewhere", "--env", "ml", "--path", "train.py", f"--CondaSvcApp.state_dir={other}", "--json")
    assert out.returncode == 0, out.stderr
    assert list(other.rglob("elsewhere.json"))  # the record went to the state_dir given on the command line
    assert cli("delete", "elsewhere", "--CondaSvcApp.state_dir", str(other)).returncode == 0
    assert not list(other.rglob("elsewhere.json"))


# -- Jupyter itself as a user service ---------------------------------------------------------
@pytest.fixture
def jupyter_env(tmp_path) -> Path:
    """An installation whose env 'srv' has Jupyter Server (the test interpreter's, through a .pth) and its script."""
    import jupyter_server

    from condaenv import make_conda_env

    root = make_conda_env(tmp_path / "jroot")
    (root / "envs").mkdir()
    env = make_conda_env(root / "envs" / "srv")
    site = Path(jupyter_server.__file__).resolve().parent.parent
    own_site = next((env / "lib").glob("python*")) / "site-packages"
    own_site.mkdir(parents=True, exist_ok=True)
    (own_site / "_condasvc_test_jupyter.pth").write_text(f"{site}\n")
    script = env / "bin" / "jupyter-server"
    script.write_text(f"#!{env}/bin/python\nimport sys\nfrom jupyter_server.serverapp import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return root


def test_jupyter_service_serves_and_updates(tmp_path, conda_root, state_dir, cli_root, jupyter_env, unit_name):
    import urllib.request

    write_config(tmp_path / "cfg", [conda_root, jupyter_env], state_dir)
    cli = Cli(tmp_path / "cfg", cli_root)
    served = tmp_path / "notebooks"
    served.mkdir()
    port = free_port()
    name = "jlab"
    try:
        out = cli(
            "jupyter-service", "--env", "srv", "--name", name, "--port", str(port), "--root", str(served), "--json"
        )
        assert out.returncode == 0, out.stderr
        assert "starting jlab" in out.stderr and "waiting for Jupyter" in out.stderr
        data = json.loads(out.stdout)
        assert data["created"] is True and data["token"], data
        assert data["url"].startswith(f"http://127.0.0.1:{port}/") and f"token={data['token']}" in data["url"]
        if not data["linger"]:
            assert "linger is off" in out.stderr
        svc = data["service"]
        argv = svc["resolved"]["exec_argv"]
        assert argv[0] == str(jupyter_env / "envs" / "srv" / "bin" / "jupyter-server")
        for flag in (
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={served}",
            "--ServerApp.port_retries=0",
        ):
            assert flag in argv
        assert svc["spec"]["restart"] == "on-failure" and svc["spec"]["enabled"] is True
        assert svc["status"]["unit_file_state"] == "enabled" and svc["status"]["active_state"] == "active"
        assert svc["resolved"]["working_directory"] == str(served)

        def status(url_port: int, token: str) -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{url_port}/api/status?token={token}", timeout=10) as resp:
                assert resp.status == 200
                return json.loads(resp.read())

        assert "started" in status(port, data["token"])

        # again, on another port: updated in place (not a conflict), restarted, answering there
        port2 = free_port()
        again = cli(
            "jupyter-service", "--env", "srv", "--name", name, "--port", str(port2), "--root", str(served), "--json"
        )
        assert again.returncode == 0, again.stderr
        data2 = json.loads(again.stdout)
        assert data2["created"] is False and "restarting jlab" in again.stderr
        assert f"--port={port2}" in data2["service"]["resolved"]["exec_argv"]
        assert "started" in status(port2, data2["token"])
        human = cli("show", name)
        assert "Jupyter Server from conda env srv" in (UNIT_DIR / unit_name(name)).read_text()
        assert "active (running)" in human.stdout
    finally:
        assert cli("delete", name).returncode == 0


def test_schedule_pause_resume_and_runs(cli, cli_root):
    # the run outlives its line a moment: journald attributes a line to its unit (and run) by reading the
    # writer's cgroup, which a process already gone has not (docs/troubleshooting.md)
    (cli_root / "tick.py").write_text("import time\nprint('tick', flush=True)\ntime.sleep(0.3)\n")
    assert (
        cli(
            "create", "ticks", "--env", "ml", "--path", "tick.py", "--schedule", "*:*:0/2", "--restart", "no"
        ).returncode
        == 0
    )
    listed = cli("list")
    assert "paused" in listed.stdout.splitlines()[1] and "NEXT RUN" in listed.stdout
    assert cli("start", "ticks").returncode == 0
    shown = cli("show", "ticks")
    assert ", armed (next " in shown.stdout
    runs = wait_until(lambda: (lambda d: d if len(d["runs"]) >= 2 else None)(cli.json("runs", "ticks")), timeout=30)
    # the manual start and the armed timer's first elapse may be one run: systemd merges the two start jobs
    triggers = {r["trigger"] for r in runs["runs"]}
    assert triggers <= {"manual", "timer"} and "timer" in triggers, runs
    table = cli("runs", "ticks")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["RUN", "TRIGGER", "START"]
    log = cli("runs", "ticks", "--log", runs["runs"][-1]["id"])
    assert log.returncode == 0 and "tick" in log.stdout
    assert cli("pause", "ticks").returncode == 0
    assert ", paused (next " in cli("show", "ticks").stdout
    # paused, nothing else starts it: a start now is a manual run (a timer run begun just before the pause
    # reaches the journal first)
    time.sleep(3)
    seen = {r["id"] for r in cli.json("runs", "ticks")["runs"]}
    assert cli("start", "ticks").returncode == 0
    new = wait_until(lambda: [r for r in cli.json("runs", "ticks")["runs"] if r["id"] not in seen] or None, timeout=30)
    # the start re-arms the paused timer without the catch-up of the elapses missed while paused (timerstamp.py;
    # test_jobs.py shows no catch-up run). With an elapse every 2 s, the timer's next one can still fall on the
    # manual start's job and systemd merges the two, as in the first half of this test: then that run is "timer".
    assert {r["trigger"] for r in new} <= {"manual", "timer"}, new
    assert new[-1]["state"] in ("running", "finished"), new
    assert cli("resume", "ticks").returncode == 0
    assert cli("delete", "ticks").returncode == 0
