"""Server configuration of the UI tests (and of `ui-tests/lab-demo`): a real JupyterLab with
the extension, against the real systemd user manager of the user running it.

It prepares, in a fresh folder under ``$CONDASVC_UI_BASE`` (default
``~/.cache/condasvc-ui``):

* ``root/``: the server's root_dir, with a script (``ticker.py``), a script that
  fails (``crash.py``) and a notebook (``analysis.ipynb``) whose kernel is the env below;
* ``conda/``: a conda installation in conda's on-disk layout (``tests/condaenv.py``)
  with the envs ``uienv`` (has ipykernel) and ``other``;
* ``share/jupyter/kernels/condasvc-uienv``: a kernelspec running uienv's python.

Services get a unique unit prefix (``cui<hex>-``), so the test units never meet
anybody else's; the suite's cleanup removes them.
"""
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

from condaenv import make_conda_env, make_conda_root  # noqa: E402

try:
    from jupyterlab.galata import configure_jupyter_server

    configure_jupyter_server(c)  # noqa: F821 - `c` is the config object of a Jupyter config file
except ImportError:  # pragma: no cover - galata's helper ships with jupyterlab
    pass

base = Path(os.environ.get("CONDASVC_UI_BASE") or Path.home() / ".cache" / "condasvc-ui")
base.mkdir(parents=True, exist_ok=True)
# Folders of earlier runs (older than an hour) go.
for old in base.iterdir():
    try:
        if old.is_dir() and time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
run = base / f"run-{uuid.uuid4().hex[:8]}"
root = run / "root"
root.mkdir(parents=True)

(root / "ticker.py").write_text(
    "import time, sys\n"
    "n = 0\n"
    "print('ticker starting', flush=True)\n"
    "while True:\n"
    "    n += 1\n"
    "    print(f'tick {n} \\x1b[32mgreen\\x1b[0m', flush=True)\n"
    "    time.sleep(1)\n"
)
# It outlives its line by a moment: journald attributes a line to its unit by reading the writer's cgroup when it
# reads the line, and a process already gone by then leaves the line without its unit (docs/troubleshooting.md).
(root / "crash.py").write_text(
    "import sys, time\nprint('about to fail', flush=True)\ntime.sleep(0.3)\nsys.exit(3)\n"
)
# The examples a newcomer starts with (scripts/lab puts them in Lab's root too).
shutil.copytree(REPO / "examples", root / "examples")
# CONDASVC_UI_NO_CONDA=1 (playwright.noconda.config.js): a newcomer's machine, no conda at all.
NO_CONDA = os.environ.get("CONDASVC_UI_NO_CONDA") == "1"
conda = None if NO_CONDA else make_conda_root(run / "conda", ["other"])
if conda is not None:
    uienv = make_conda_env(conda / "envs" / "uienv", ipykernel=True)
    kernels = run / "share" / "jupyter" / "kernels" / "condasvc-uienv"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(uienv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (uienv)",
        "language": "python",
    }))
os.environ["JUPYTER_PATH"] = os.pathsep.join(
    [str(run / "share" / "jupyter")] + ([os.environ["JUPYTER_PATH"]] if os.environ.get("JUPYTER_PATH") else [])
)
(root / "analysis.ipynb").write_text(json.dumps({
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "alpha = 1", "outputs": [],
         "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "print('alpha is', alpha)", "outputs": [],
         "execution_count": None},
    ],
    "metadata": {"kernelspec": {"name": "condasvc-uienv", "display_name": "Python (uienv)", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}))

c.ServerApp.root_dir = str(root)  # noqa: F821
c.ServerApp.port = int(os.environ.get("CONDASVC_UI_PORT", "8888"))  # noqa: F821
c.ServerApp.open_browser = False  # noqa: F821
c.EnvironmentFinder.conda_roots = [str(conda)] if conda is not None else []  # noqa: F821
c.EnvironmentFinder.use_conda_executable = False  # noqa: F821
c.CondaSvcApp.unit_prefix = os.environ.get("CONDASVC_UI_PREFIX") or f"cui{uuid.uuid4().hex[:6]}-"  # noqa: F821
c.KernelSpecManager.ensure_native_kernel = False  # noqa: F821
# CONDASVC_UI_HOSTS="a b" (playwright.hosts.config.js): other hosts this server shows (issue 15), their bridge
# started with CONDASVC_UI_BRIDGE when set (the test's remote account runs the test venv's Python).
if os.environ.get("CONDASVC_UI_HOSTS"):
    c.CondaSvcApp.hosts = os.environ["CONDASVC_UI_HOSTS"].split()  # noqa: F821
if os.environ.get("CONDASVC_UI_BRIDGE"):
    c.CondaSvcApp.host_bridge_command = os.environ["CONDASVC_UI_BRIDGE"]  # noqa: F821
if os.getuid() == 0:
    c.ServerApp.allow_root = True  # noqa: F821
