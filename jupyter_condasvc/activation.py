"""What ``conda activate`` would set, computed without conda.

Conda packages such as cudatoolkit, gdal or openjdk drop shell scripts into
``<prefix>/etc/conda/activate.d/``; ``conda activate`` sources them.  A
service never runs ``conda activate``, so at registration we source those
scripts once, in a clean shell, and keep the variables they set (a
snapshot stored in the service's 0600 environment file).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Dict

from .errors import InvalidSpec
from .process import run

#: Variables that describe the shell, not the environment.
_IGNORED = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "PS1", "BASH_EXECUTION_STRING"})

_SCRIPT = r"""
set -a
for f in "$CONDA_PREFIX"/etc/conda/activate.d/*.sh; do
  [ -r "$f" ] || continue
  . "$f" || { echo "activation script $f failed" >&2; exit 3; }
done
set +a
printf '\0%s\0' __CONDASVC_ENV__
env -0
"""


def activation_scripts(prefix: str) -> list:
    d = Path(prefix) / "etc" / "conda" / "activate.d"
    return sorted(str(p) for p in d.glob("*.sh")) if d.is_dir() else []


def _parse_env0(blob: str) -> Dict[str, str]:
    out = {}
    for item in blob.split("\0"):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
    return out


async def snapshot(prefix: str, env_name: str, base_path: str, home: str) -> Dict[str, str]:
    """Variables the env's activate.d scripts set or change (PATH excluded)."""
    if not activation_scripts(prefix):
        return {}
    base = {
        "PATH": f"{prefix}/bin:{base_path}",
        "HOME": home,
        "CONDA_PREFIX": prefix,
        "CONDA_DEFAULT_ENV": env_name,
        "CONDA_SHLVL": "1",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    try:
        code, out, err = await run(
            ["/bin/bash", "--noprofile", "--norc", "-c", _SCRIPT], env=None, timeout=30, clean_env=base
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise InvalidSpec(f"The activation scripts of {prefix} could not be run: {exc}.", field="activation") from None
    if code != 0:
        raise InvalidSpec(
            f"The activation scripts in {prefix}/etc/conda/activate.d failed: {err.strip()[-300:] or f'exit {code}'}.",
            field="activation",
        )
    marker = "\0__CONDASVC_ENV__\0"
    after = _parse_env0(out.split(marker, 1)[1] if marker in out else out)
    result = {}
    for key, value in after.items():
        if key in _IGNORED or key in ("PATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "CONDA_SHLVL", "HOME", "LANG"):
            continue
        if base.get(key) != value:
            result[key] = value
    return dict(sorted(result.items()))
