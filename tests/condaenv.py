"""Build real conda prefixes for tests, without conda.

``make_conda_env`` makes a prefix in conda's on-disk layout whose
``bin/python`` really runs: a ``python -m venv --without-pip --symlinks``
plus the ``conda-meta`` files conda writes (``history`` and a package record
for python).  ``make_conda_root`` makes an installation: a root prefix that
is itself an environment, with ``envs/<name>`` children.

ipykernel: instead of installing it into every prefix, ``ipykernel=True``
writes a ``.pth`` file into the prefix's site-packages that names the
site-packages folder where the test interpreter has ipykernel installed, so
``<prefix>/bin/python -c "import ipykernel"`` really works; plus the
``conda-meta/ipykernel-*.json`` record conda would write.  When no usable
ipykernel is installed the calling test is skipped.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Union

import pytest

from jupyter_condasvc.conda import EnvironmentFinder

__all__ = ["CONDA_VARS", "base_interpreter", "finder", "interpreter_version", "make_conda_env", "make_conda_root"]

#: The variables through which the machine running the tests could show its own conda or venvs to a finder.
CONDA_VARS = (
    "CONDA_EXE",
    "MAMBA_EXE",
    "CONDA_ROOT",
    "CONDA_PREFIX",
    "MAMBA_ROOT_PREFIX",
    "CONDARC",
    "CONDA_ENVS_PATH",
    "CONDA_ENVS_DIRS",
    "WORKON_HOME",
)

HISTORY_HEADER = "==> 2026-01-15 09:30:00 <=="


@functools.cache
def base_interpreter() -> str:
    """A real interpreter the running user may execute, to build venvs from.

    The base of the test venv when this user can run it (a pyenv under /root
    is not runnable by an unprivileged user), else ``/usr/bin/python3``.
    """
    candidates = (getattr(sys, "_base_executable", None), os.path.realpath(sys.executable), "/usr/bin/python3")
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            try:
                subprocess.run([candidate, "-c", "pass"], check=True, timeout=30, capture_output=True)
            except (OSError, subprocess.SubprocessError):
                continue
            return candidate
    raise RuntimeError("No Python interpreter this user can run was found to build test environments.")


@functools.cache
def interpreter_version(python: str) -> str:
    """``X.Y.Z`` of an interpreter, by running it."""
    out = subprocess.run(
        [python, "-c", "import sys;print('%d.%d.%d' % sys.version_info[:3])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


def _ipykernel_site_packages(version: str) -> Path:
    """The site-packages holding ipykernel for this test run, or skip the test."""
    spec = importlib.util.find_spec("ipykernel")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ipykernel is not installed in the test interpreter, so no env can import it")
    if ".".join(version.split(".")[:2]) != "{}.{}".format(*sys.version_info[:2]):
        pytest.skip(f"the env's Python {version} cannot import the test interpreter's ipykernel")
    return Path(next(iter(spec.submodule_search_locations))).parent


def _write_record(prefix: Path, name: str, version: str, build: str) -> None:
    record = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "subdir": "linux-64",
        "fn": f"{name}-{version}-{build}.conda",
        "files": [],
    }
    (prefix / "conda-meta" / f"{name}-{version}-{build}.json").write_text(json.dumps(record, indent=2))


def make_conda_env(
    prefix: Path,
    *,
    python: Optional[Union[str, Path]] = None,
    ipykernel: bool = False,
    register: Optional[Path] = None,
) -> Path:
    """Create a real conda-layout prefix at ``prefix`` and return it.

    ``register`` is a HOME: the prefix is appended to
    ``<register>/.conda/environments.txt`` as ``conda create`` does.
    """
    prefix = Path(prefix)
    interpreter = str(python or base_interpreter())
    version = interpreter_version(interpreter)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [interpreter, "-m", "venv", "--without-pip", "--symlinks", str(prefix)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    meta = prefix / "conda-meta"
    meta.mkdir(exist_ok=True)
    (meta / "history").write_text(
        f"{HISTORY_HEADER}\n"
        f"# cmd: conda create --prefix {prefix} python={version}\n"
        "# conda version: 24.11.3\n"
        f"+conda-forge/linux-64::python-{version}-h12345_0\n"
        f"# update specs: ['python={version}']\n"
    )
    _write_record(prefix, "python", version, "h12345_0")
    if ipykernel:
        site = _ipykernel_site_packages(version)
        major_minor = ".".join(version.split(".")[:2])
        own_site = prefix / "lib" / f"python{major_minor}" / "site-packages"
        own_site.mkdir(parents=True, exist_ok=True)
        (own_site / "_condasvc_test_ipykernel.pth").write_text(f"{site}\n")
        _write_record(prefix, "ipykernel", importlib.metadata.version("ipykernel"), "pyh3099207_0")
    if register is not None:
        envs_txt = Path(register) / ".conda" / "environments.txt"
        envs_txt.parent.mkdir(parents=True, exist_ok=True)
        with envs_txt.open("a") as f:
            f.write(f"{prefix}\n")
    return prefix


def make_conda_root(root: Path, envs: list[str], *, python: Optional[Union[str, Path]] = None) -> Path:
    """Create an installation: ``root`` (an env itself, with ``envs/`` and ``pkgs/``) and ``envs/<name>``."""
    root = make_conda_env(Path(root), python=python)
    (root / "envs").mkdir(exist_ok=True)
    (root / "pkgs").mkdir(exist_ok=True)
    for name in envs:
        make_conda_env(root / "envs" / name, python=python)
    return root


def finder(project: Optional[Path] = None, **kwargs: Any) -> EnvironmentFinder:
    """An EnvironmentFinder that does not ask a conda executable (unless told), for the project folder PROJECT."""
    kwargs.setdefault("use_conda_executable", False)
    f = EnvironmentFinder(**kwargs)
    f.project_dir = str(project) if project else None
    return f
