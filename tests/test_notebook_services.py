"""Notebook services, schedules and activation on the real user manager, with real kernels."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Optional

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import SYSTEMCTL_ENV, UNIT_DIR, create, free_port, journal, status_of, stopped, systemctl, wait_for

pytestmark = pytest.mark.systemd


def notebook(path: Path, *cells, parameters: Optional[str] = None) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "no-such-kernel", "display_name": "bogus", "language": "python"}
    if parameters is not None:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.append(new_markdown_cell("# a notebook service"))
    nb.cells.extend(new_code_cell(c) for c in cells)
    nbformat.write(nb, str(path))
    return path


def journal_at(unit: str, priority: str) -> str:
    return subprocess.run(
        ["journalctl", "--user", "-u", unit, "-p", priority, "-o", "cat", "--no-pager"],
        capture_output=True,
        text=True,
        env=SYSTEMCTL_ENV,
        timeout=60,
    ).stdout


async def test_notebook_runs_on_env_kernel_reports_progress_and_keeps_executed_copy(api, root, conda_root, unit_name):
    notebook(
        root / "train.ipynb",
        "import sys, os\nprint('kernel python:', sys.executable)\nprint('env:', os.environ['CONDA_DEFAULT_ENV'])",
        "import time\ntime.sleep(3)",
        "21 * 2",
        parameters="alpha = 1\nname = 'x'",
    )
    code, svc = await api(
        "POST",
        "services",
        body={
            "name": "nb-train",
            "kind": "notebook",
            "env": "nb",
            "path": "train.ipynb",
            "restart": "no",
            "parameters": {"alpha": 5, "name": 'it\'s "quoted"'},
        },
    )
    assert code == 201, svc
    unit = unit_name("nb-train")
    assert "Type=notify" in (UNIT_DIR / unit).read_text()
    code, svc = await api("POST", "services", "nb-train", "start")  # returns once the kernel is up (READY=1)
    assert code == 200, svc
    progress = await wait_for(lambda: _progress(api, "nb-train"), timeout=30)
    assert progress.startswith("cell 4/5")  # parameters, injected parameters, then the code cells
    assert "status" in systemctl("status", unit).stdout.lower()
    status = await wait_for(lambda: stopped(api, "nb-train"), timeout=60)
    assert status["active_state"] == "inactive" and status["result"] == "success"
    out = nbformat.read(str(root / "train.out.ipynb"), as_version=4)
    code_cells = [c for c in out.cells if c.cell_type == "code"]
    texts = json.dumps([c.get("outputs") for c in code_cells])
    python = str(conda_root / "envs" / "nb" / "bin" / "python")
    assert f"kernel python: {python}" in texts
    assert "env: nb" in texts
    assert "42" in texts
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "alpha = 5" in injected[0].source and repr('it\'s "quoted"') in injected[0].source
    logged = journal(unit)
    assert f"kernel python: {python}" in logged


async def _progress(api, name):
    text = (await status_of(api, name)).get("status_text") or ""
    return text if "import time" in text else None


async def test_failing_cell_fails_the_unit_with_traceback_at_err(api, root, unit_name):
    notebook(root / "bad.ipynb", "x = 1", "y = 2", "raise ValueError('boom in cell 3')", "print('never')")
    code, svc = await api(
        "POST",
        "services",
        body={"name": "nb-bad", "kind": "notebook", "env": "nb", "path": "bad.ipynb", "restart": "no"},
    )
    assert code == 201, svc
    await api("POST", "services", "nb-bad", "start")
    status = await wait_for(lambda: stopped(api, "nb-bad"), timeout=60)
    assert status["active_state"] == "failed" and status["result"] == "exit-code" and status["exec_main_status"] == 1
    errors = await wait_for(
        lambda: asyncio.to_thread(
            lambda: (lambda t: t if "boom in cell 3" in t else None)(journal_at(unit_name("nb-bad"), "err"))
        )
    )
    assert "ValueError" in errors and "cell 3" in errors
    assert "never" not in journal(unit_name("nb-bad"))


async def test_serve_forever_notebook_stops_cleanly_without_orphan_kernel(api, root, unit_name):
    notebook(
        root / "serve.ipynb",
        "import os\nprint('kernel pid', os.getpid(), flush=True)",
        "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.2)",
    )
    code, svc = await api(
        "POST", "services", body={"name": "nb-serve", "kind": "notebook", "env": "nb", "path": "serve.ipynb"}
    )
    assert code == 201, svc
    code, svc = await api("POST", "services", "nb-serve", "start")
    unit = unit_name("nb-serve")
    logged = await wait_for(
        lambda: asyncio.to_thread(lambda: (lambda t: t if t.count("tick") >= 3 else None)(journal(unit))), timeout=40
    )
    kernel_pid = int(logged.split("kernel pid", 1)[1].split()[0])
    assert Path(f"/proc/{kernel_pid}").exists()
    assert (await status_of(api, "nb-serve"))["active_state"] == "active"
    code, svc = await api("POST", "services", "nb-serve", "stop")
    assert code == 200 and svc["status"]["active_state"] == "inactive" and svc["status"]["result"] == "success"
    assert not Path(f"/proc/{kernel_pid}").exists(), "the kernel outlived its service"


async def test_activation_scripts_reach_the_kernel(api, root, conda_root, unit_name):
    env = conda_root / "envs" / "nb"
    actd = env / "etc" / "conda" / "activate.d"
    actd.mkdir(parents=True, exist_ok=True)
    (actd / "cuda.sh").write_text(
        'export CUDA_HOME="$CONDA_PREFIX/cuda"\nexport LD_LIBRARY_PATH="$CONDA_PREFIX/cuda/lib64"\nexport ACT_NOTE="x y $$"\n'
    )
    try:
        notebook(
            root / "act.ipynb",
            "import os\nprint('CUDA_HOME=' + os.environ.get('CUDA_HOME', '-'))\nprint('LD=' + os.environ.get('LD_LIBRARY_PATH', '-'))",
        )
        spec = {
            "name": "nb-act",
            "kind": "notebook",
            "env": "nb",
            "path": "act.ipynb",
            "restart": "no",
            "activation": True,
        }
        code, preview = await api("POST", "preview", body=spec)
        assert code == 200
        assert preview["activation"]["CUDA_HOME"] == f"{env}/cuda"
        assert preview["activation"]["LD_LIBRARY_PATH"] == f"{env}/cuda/lib64"
        code, svc = await api("POST", "services", body=spec)
        assert code == 201, svc
        assert "CUDA_HOME" not in (UNIT_DIR / unit_name("nb-act")).read_text()
        await api("POST", "services", "nb-act", "start")
        await wait_for(lambda: stopped(api, "nb-act"), timeout=60)
        logged = journal(unit_name("nb-act"))
        assert f"CUDA_HOME={env}/cuda" in logged and f"LD={env}/cuda/lib64" in logged
    finally:
        (actd / "cuda.sh").unlink()


async def test_notebook_preflight(api, root):
    notebook(root / "ok.ipynb", "1")
    (root / "broken.ipynb").write_text("{not a notebook")
    code, err = await api(
        "POST", "services", body={"name": "nb-x", "kind": "notebook", "env": "ml", "path": "ok.ipynb"}
    )
    assert code == 400 and err["field"] == "env" and "conda install -n ml ipykernel" in err["message"]
    code, err = await api(
        "POST", "services", body={"name": "nb-x", "kind": "notebook", "env": "nb", "path": "broken.ipynb"}
    )
    assert code == 400 and err["field"] == "path" and "not a valid notebook" in err["message"]


async def test_schedule_fires_and_is_reported(api, root, unit_name):
    (root / "tick.py").write_text("import time\nopen('ticks.txt', 'a').write(str(time.time()) + '\\n')\n")
    spec = {
        "name": "sched",
        "kind": "script",
        "env": "ml",
        "path": "tick.py",
        "schedule": "*:*:0/2",
        "enabled": True,
        "restart": "no",
    }
    code, preview = await api("POST", "preview", body=spec)
    assert code == 200 and len(preview["next_runs"]) == 3 and "OnCalendar=*:*:0/2" in preview["timer"]
    code, svc = await api("POST", "services", body=spec)
    assert code == 201, svc
    timer = unit_name("sched")[: -len(".service")] + ".timer"
    assert (UNIT_DIR / timer).exists()
    assert systemctl("is-enabled", timer).stdout.strip() == "enabled"
    assert systemctl("is-active", timer).stdout.strip() == "active"
    await wait_for(
        lambda: asyncio.to_thread(
            lambda: (root / "ticks.txt").exists() and len((root / "ticks.txt").read_text().splitlines()) >= 2
        ),
        timeout=20,
    )

    async def reported():
        # while a run is in progress (its ExecStopPost included) systemd has no next elapse yet
        code, svc = await api("GET", "services", "sched")
        schedule = svc["status"]["schedule"]
        return svc if schedule["next_run"] and schedule["last_run"] else None

    svc = await wait_for(reported, timeout=20)
    code, svc = await api("POST", "services", "sched", "disable")
    # not at login any more, but the schedule stays armed until paused
    assert systemctl("is-enabled", timer).stdout.strip() == "disabled"
    assert systemctl("is-active", timer).stdout.strip() == "active" and svc["status"]["schedule"]["armed"]
    code, svc = await api("POST", "services", "sched", "pause")
    assert code == 200 and not svc["status"]["schedule"]["armed"]
    assert systemctl("is-active", timer).stdout.strip() == "inactive"
    before = len((root / "ticks.txt").read_text().splitlines())
    code, svc = await api("POST", "services", "sched", "run-now")
    assert code == 200
    await wait_for(
        lambda: asyncio.to_thread(lambda: len((root / "ticks.txt").read_text().splitlines()) > before), timeout=10
    )
    # dropping the schedule removes the timer; deleting leaves nothing behind
    code, svc = await api("PATCH", "services", "sched", body={"schedule": None})
    assert code == 200 and not (UNIT_DIR / timer).exists()
    assert "WantedBy=default.target" in (UNIT_DIR / unit_name("sched")).read_text()
    code, _ = await api("PATCH", "services", "sched", body={"schedule": "hourly", "enabled": True})
    assert (UNIT_DIR / timer).exists()
    code, _ = await api("DELETE", "services", "sched")
    assert code == 204 and not (UNIT_DIR / timer).exists() and not (UNIT_DIR / unit_name("sched")).exists()
    assert not list(UNIT_DIR.glob(f"timers.target.wants/{timer}"))


async def test_bad_calendar_is_refused_with_systemds_words(api, root):
    (root / "tick.py").write_text("print(1)\n")
    code, err = await api(
        "POST",
        "services",
        body={"name": "badcal", "kind": "script", "env": "ml", "path": "tick.py", "schedule": "every blue moon"},
    )
    assert code == 400 and err["field"] == "schedule"
    assert "Failed to parse calendar specification" in err["message"]


async def test_limits_not_enforced_here_are_reported(api, root):
    (root / "a.py").write_text("print(1)\n")
    code, host = await api("GET", "host")
    code, svc = await api(
        "POST",
        "services",
        body={"name": "lim", "kind": "script", "env": "ml", "path": "a.py", "memory_max": "1G", "cpu_quota": "50%"},
    )
    assert code == 201
    memory_warned = any("memory_max" in w for w in svc["warnings"])
    cpu_warned = any("cpu_quota" in w for w in svc["warnings"])
    assert memory_warned == (not host["limits"]["memory_enforced"])
    assert cpu_warned == (not host["limits"]["cpu_enforced"])


SERVER = """\
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists('sick') else 200)
        self.end_headers()
    def log_message(self, *a):
        pass
print('serving', flush=True)
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"""


async def test_unhealthy_service_is_restarted_by_the_watchdog(api, root, unit_name):
    port = free_port()
    await create(
        api,
        root,
        "web",
        SERVER,
        args=[str(port)],
        restart="on-failure",
        restart_sec=0.5,
        health_check={
            "type": "http",
            "url": f"http://127.0.0.1:{port}/",
            "interval_sec": 0.5,
            "timeout_sec": 0.4,
            "start_period_sec": 5,
            "failure_threshold": 2,
        },
    )
    text = (UNIT_DIR / unit_name("web")).read_text()
    assert "WatchdogSec=" in text and "ExecStartPost=" in text and "NotifyAccess=all" in text
    await api("POST", "services", "web", "start")
    health = await wait_for(lambda: _health(api, "web", "healthy"), timeout=20)
    assert health["consecutive_failures"] == 0
    # The state file (health) and systemd's StatusText (a PropertiesChanged signal) arrive by separate ways:
    # the signal may come a moment after the file says healthy.
    status = await wait_for(lambda: _status_text(api, "web", "healthy"), timeout=10)
    assert status["n_restarts"] == 0
    (root / "sick").write_text("")
    restarted = await wait_for(lambda: _restarted(api, "web"), timeout=30)
    assert restarted["n_restarts"] >= 1
    (root / "sick").unlink()
    logged = journal(unit_name("web"))
    assert "health check failed 2 times in a row" in logged and "asking systemd to restart" in logged
    assert "health check failed" in journal_at(unit_name("web"), "err")
    await wait_for(lambda: _health(api, "web", "healthy"), timeout=20)


async def _health(api, name, state):
    health = (await status_of(api, name)).get("health")
    return health if health and health["state"] == state else None


async def _status_text(api, name, prefix):
    status = await status_of(api, name)
    return status if (status.get("status_text") or "").startswith(prefix) else None


async def _restarted(api, name):
    status = await status_of(api, name)
    return status if (status["n_restarts"] or 0) >= 1 else None
