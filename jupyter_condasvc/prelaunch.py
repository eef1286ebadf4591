"""Start a notebook service's kernel before the runner imports its libraries.

The runner (:mod:`jupyter_condasvc.runner`) needs nbformat, jupyter_client
and nbclient, about 0.2 s of imports, but the kernel it drives is a separate
process that does not need them to start.  So when the runner runs as a
service (``python -m jupyter_condasvc.runner``), it first launches the kernel
with this module (standard library only), then imports the rest while the
kernel boots on the other core, and then hands the running process to
jupyter_client (``runner._AdoptingKernelManager``), which connects to it as
to any kernel it started itself.

The kernel is started exactly as jupyter_client's ``LocalProvisioner`` would
(same argv, environment, working directory, ``stdin`` pipe, a new session,
``JPY_PARENT_PID``), over ``ipc`` sockets in a private 0700 folder.  The
adopting manager compares the command and environment jupyter_client
computes with the ones used here; on any difference the early kernel is
killed and jupyter_client starts its own, so behaviour never depends on this
shortcut.

It also holds the one runner convention the server needs
(:func:`default_output_path`), so that ``services`` (and with it every CLI
command) does not import the runner and its libraries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

#: The kernel spec's name; the connection file records it.
KERNEL_NAME = "condasvc-env"


def default_output_path(notebook: Path) -> Path:
    """``<notebook dir>/<stem>.out.ipynb``: where the executed copy goes by default."""
    return notebook.with_name(notebook.stem + ".out.ipynb")


def kernel_argv(python: str) -> List[str]:
    """The kernel's command line, ``{connection_file}`` still to be filled in.

    ``--HistoryManager.hist_file=:memory:`` keeps a service from writing (and
    locking) the user's IPython history database.
    """
    return [python, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:"]


def kernel_env() -> Dict[str, str]:
    """The kernel's environment: ours minus ``NOTIFY_SOCKET``.

    With ``NotifyAccess=main`` systemd would only log a warning for anything
    the notebook sends, and the service's state is the runner's to report.
    """
    return {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}


def private_base() -> Optional[str]:
    """``$XDG_RUNTIME_DIR`` when usable (short paths: Unix socket names are limited), else the temp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
        return base
    return None


@dataclass
class Prelaunched:
    """A kernel process started early, waiting for a kernel manager to adopt it."""

    process: subprocess.Popen
    argv: List[str]
    env: Dict[str, str]
    cwd: str
    private_dir: str
    connection_file: str
    adopted: bool = field(default=False)

    def matches(self, argv: Sequence[str], env: Dict[str, str], cwd: Optional[str]) -> bool:
        """Would jupyter_client have started this very process?  (Its ``JPY_PARENT_PID`` is ours.)"""
        return list(argv) == self.argv and dict(env, JPY_PARENT_PID=str(os.getpid())) == self.env and cwd == self.cwd

    def discard(self) -> None:
        """Kill the kernel unless a manager adopted it (then the manager stops it)."""
        if self.adopted:
            return
        self.adopted = True  # nothing more to do with it
        try:
            self.process.kill()
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _python_arg(argv: Sequence[str]) -> Optional[str]:
    for i, arg in enumerate(argv):
        if arg == "--python" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--python="):
            return arg.split("=", 1)[1]
    return None


def prelaunch(argv: Sequence[str]) -> Optional[Prelaunched]:
    """Start the kernel ``--python`` in ``argv`` names; None when there is none to start (the runner then reports
    why).
    """
    import uuid

    python = _python_arg(argv)
    if not python or not os.path.isabs(python) or not os.path.isfile(python) or not os.access(python, os.X_OK):
        return None
    private_dir = tempfile.mkdtemp(prefix="condasvc-", dir=private_base())
    conn = os.path.join(private_dir, "kernel.json")
    # what jupyter_client writes for the ipc transport: socket k-1 ... k-5 in the folder
    info = {
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "ip": os.path.join(private_dir, "k"),
        "key": str(uuid.uuid4()),
        "transport": "ipc",
        "signature_scheme": "hmac-sha256",
        "kernel_name": KERNEL_NAME,
    }
    try:
        fd = os.open(conn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        cmd = [os.path.expanduser(a.replace("{connection_file}", conn)) for a in kernel_argv(python)]
        env = dict(kernel_env(), JPY_PARENT_PID=str(os.getpid()))
        env.pop("PYTHONEXECUTABLE", None)  # jupyter_client drops it for Python kernels
        cwd = os.getcwd()
        process = subprocess.Popen(cmd, stdin=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    except OSError:
        shutil.rmtree(private_dir, ignore_errors=True)
        return None
    return Prelaunched(process, cmd, env, cwd, private_dir, conn)
