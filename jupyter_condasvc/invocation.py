"""How a user runs this package's CLI from a terminal of the server that is running it.

Fix hints name a command the user can paste.  ``jupyter condasvc`` works only
where ``jupyter`` and ``jupyter-condasvc`` are on PATH and belong to the
interpreter that runs this code; under JupyterHub with a separate single-user
environment (the spawner runs ``/opt/env/bin/jupyterhub-singleuser`` with a
PATH that does not hold ``/opt/env/bin``) they are not, and a Lab terminal
must name the interpreter: ``/opt/env/bin/python -m jupyter_condasvc``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from typing import Optional


def cli_command(path: Optional[str] = None, executable: Optional[str] = None) -> str:
    """The command prefix for hints: ``jupyter condasvc`` or ``<python> -m jupyter_condasvc``.

    ``path`` is the PATH to look in (default: the process's); ``executable``
    the interpreter running this code (default: ``sys.executable``).
    """
    executable = executable or sys.executable
    search = os.environ.get("PATH", "") if path is None else path
    ours = shutil.which("jupyter-condasvc", path=search)
    if ours and shutil.which("jupyter", path=search) and _same_bin(ours, executable):
        return "jupyter condasvc"
    return f"{shlex.quote(executable)} -m jupyter_condasvc"


def _same_bin(script: str, executable: str) -> bool:
    """Is ``script`` installed next to ``executable`` (the same environment's bin directory)?"""
    here = {os.path.dirname(os.path.abspath(executable)), os.path.join(sys.prefix, "bin")}
    return os.path.dirname(os.path.abspath(script)) in here
