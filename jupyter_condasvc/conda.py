"""Discovery of the user's conda environments.

One job: answer "which conda environments does this user have, and what is
in them".  Conda (or mamba / micromamba) is asked when present; otherwise, or
when it fails, the on-disk layout conda itself uses is read:
``~/.conda/environments.txt``, ``envs_dirs`` from the condarc files and the
``CONDA_ENVS_PATH`` / ``CONDA_ENVS_DIRS`` variables, ``~/.conda/envs`` and
``<root>/envs`` of every known installation.  A directory is a conda
environment iff it has ``conda-meta/history``.

Nothing here blocks the event loop: the filesystem walk runs in the loop's
default executor and executables run as asyncio subprocesses with a timeout.
"""
from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

import yaml
from traitlets import Bool, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from .errors import EnvironmentNotFound

__all__ = ["CondaEnv", "EnvironmentFinder"]

#: Where installers put a root prefix by default (``~`` is the running user's HOME).
DEFAULT_ROOTS = (
    "~/miniconda3",
    "~/anaconda3",
    "~/miniforge3",
    "~/mambaforge",
    "~/micromamba",
    "~/miniconda",
    "~/anaconda",
    "~/.local/share/mamba",
    "/opt/conda",
    "/opt/miniconda3",
    "/opt/anaconda3",
    "/opt/miniforge3",
    "/opt/mambaforge",
    "/usr/local/miniconda3",
    "/usr/local/anaconda3",
)

#: condarc files conda reads, lowest priority first (``$CONDARC`` is added last).
CONDARC_FILES = (
    "/etc/conda/.condarc",
    "/etc/conda/condarc",
    "~/.config/conda/.condarc",
    "~/.config/conda/condarc",
    "~/.conda/.condarc",
    "~/.conda/condarc",
    "~/.condarc",
)

_PYTHON_RECORD = re.compile(r"^python-(\d+\.\d+(?:\.\d+)?[^-]*)-.*\.json$")


@dataclass(frozen=True)
class CondaEnv:
    """One conda environment, as conda would list it."""

    name: str
    prefix: str
    python: Optional[str]
    python_version: Optional[str]
    has_ipykernel: bool
    root: Optional[str]
    is_root: bool

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.prefix, "bin")

    def to_json(self) -> dict:
        return asdict(self)


def _norm(path: str) -> str:
    """Absolute, normalised, ``~`` and ``$VAR`` expanded (HOME read now)."""
    return os.path.normpath(os.path.abspath(os.path.expandvars(os.path.expanduser(path))))


def _real(path: str) -> str:
    return os.path.realpath(path)


def is_conda_env(prefix: str) -> bool:
    """True iff ``prefix`` has ``conda-meta/history``, conda's own test."""
    return os.path.isfile(os.path.join(prefix, "conda-meta", "history"))


def _looks_like_root(prefix: str) -> bool:
    """An installation's root prefix: an env that also holds ``envs/``, ``pkgs/`` or ``condabin/``."""
    return is_conda_env(prefix) and any(
        os.path.isdir(os.path.join(prefix, d)) for d in ("envs", "pkgs", "condabin")
    )


def _split_paths(value: str) -> list[str]:
    return [p for p in re.split(r"[,%s]" % re.escape(os.pathsep), value) if p.strip()]


def _python_version(prefix: str, python: Optional[str], timeout: float) -> Optional[str]:
    """From conda-meta records, else pyvenv.cfg, else by running the interpreter."""
    meta = os.path.join(prefix, "conda-meta")
    try:
        records = sorted(os.listdir(meta))
    except OSError:
        records = []
    for rec in records:
        m = _PYTHON_RECORD.match(rec)
        if not m:
            continue
        try:
            with open(os.path.join(meta, rec), encoding="utf-8") as f:
                version = json.load(f).get("version")
            if isinstance(version, str) and version:
                return version
        except (OSError, ValueError):
            pass
        return m.group(1)
    try:
        with open(os.path.join(prefix, "pyvenv.cfg"), encoding="utf-8") as f:
            cfg = dict(
                (k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in f) if _
            )
        version = cfg.get("version") or cfg.get("version_info")
        if version:
            return ".".join(version.split(".")[:3])
    except OSError:
        pass
    if python is None:
        return None
    try:
        out = subprocess.run(
            [python, "-c", "import sys;print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True, text=True, timeout=timeout, check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _has_ipykernel(prefix: str) -> bool:
    if glob.glob(os.path.join(glob.escape(prefix), "conda-meta", "ipykernel-[0-9]*.json")):
        return True
    pattern = os.path.join(glob.escape(prefix), "lib", "python*", "site-packages", "ipykernel")
    return any(os.path.isdir(p) for p in glob.glob(pattern))


class EnvironmentFinder(LoggingConfigurable):
    """Finds every conda environment of the running user, with a short cache."""

    conda_roots = List(
        Unicode(), default_value=[], config=True,
        help="Extra conda installations (root prefixes) to search, besides the "
        "usual install locations (~/miniconda3, ~/anaconda3, ~/miniforge3, /opt/conda, ...) "
        "and the one named by CONDA_ROOT / CONDA_PREFIX. Each root and its envs/ "
        "folder are listed.",
    )
    envs_dirs = List(
        Unicode(), default_value=[], config=True,
        help="Extra folders that hold conda environments, one environment per "
        "subfolder, besides ~/.conda/envs, envs_dirs from .condarc and "
        "CONDA_ENVS_PATH.",
    )
    use_conda_executable = Bool(
        True, config=True,
        help="Ask conda, mamba or micromamba ('env list --json') for the list of "
        "environments when one is installed. If it fails or times out, the "
        "folders conda uses on disk are read instead.",
    )
    conda_executable = Unicode(
        "", config=True,
        help="Path of the conda, mamba or micromamba executable to ask. Empty "
        "means: CONDA_EXE, then MAMBA_EXE, then conda, mamba or micromamba on PATH.",
    )
    conda_timeout = Float(
        15.0, config=True,
        help="Seconds to wait for 'conda env list --json' (and for an "
        "interpreter asked its version) before giving up on it.",
    )
    cache_seconds = Float(
        30.0, config=True,
        help="Seconds a list of environments is reused before the disk is "
        "searched again. 0 searches on every request.",
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cache: Optional[tuple[float, list[CondaEnv]]] = None
        self._inflight: Optional[asyncio.Future] = None

    async def list_environments(self, refresh: bool = False) -> list[CondaEnv]:
        """Every environment, roots first. Concurrent callers share one search.

        ``refresh=True`` ignores the cache and starts a new search.
        """
        if not refresh and self._cache is not None:
            stamp, envs = self._cache
            if time.monotonic() - stamp < self.cache_seconds:
                return list(envs)
        if refresh or self._inflight is None:
            task = asyncio.ensure_future(self._discover())
            self._inflight = task
            task.add_done_callback(self._discovery_done)
        return list(await asyncio.shield(self._inflight))

    def _discovery_done(self, task: asyncio.Future) -> None:
        if self._inflight is not task:
            return  # superseded by a refresh: its result is the newer one
        self._inflight = None
        if not task.cancelled() and task.exception() is None:
            self._cache = (time.monotonic(), task.result())

    async def get(self, name_or_prefix: str) -> CondaEnv:
        """The environment with that name or prefix.

        A name that several environments share (two roots are both ``base``)
        means the first in search order, i.e. the one ``list_environments``
        shows first.  A miss in the cache triggers one fresh search.
        """
        loop = asyncio.get_running_loop()
        for refresh in (False, True):
            envs = await self.list_environments(refresh=refresh)
            if _is_path(name_or_prefix):  # resolving symlinks touches the disk
                found = await loop.run_in_executor(None, _lookup_prefix, envs, name_or_prefix)
            else:
                found = next((e for e in envs if e.name == name_or_prefix), None)
            if found is not None:
                return found
        known = ", ".join(dict.fromkeys(e.name for e in envs)) or "none were found"
        what = "at" if _is_path(name_or_prefix) else "named"
        raise EnvironmentNotFound(
            f"No conda environment {what} '{name_or_prefix}'. Known environments: {known}."
        )

    async def _discover(self) -> list[CondaEnv]:
        loop = asyncio.get_running_loop()
        listed: Optional[list[str]] = None
        if self.use_conda_executable:
            exe = await loop.run_in_executor(None, self._find_executable)
            if exe:
                listed = await self._ask_executable(exe)
        return await loop.run_in_executor(None, self._walk, listed or [])

    def _find_executable(self) -> Optional[str]:
        if self.conda_executable:
            return self.conda_executable
        for var in ("CONDA_EXE", "MAMBA_EXE"):
            value = os.environ.get(var)
            if value and os.access(value, os.X_OK):
                return value
        for name in ("conda", "mamba", "micromamba"):
            found = shutil.which(name)
            if found:
                return found
        return None

    async def _ask_executable(self, exe: str) -> Optional[list[str]]:
        """Prefixes from ``<exe> env list --json``; None (and a warning) on failure."""
        try:
            proc = await asyncio.create_subprocess_exec(
                exe, "env", "list", "--json",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            self.log.warning(
                "Could not run %s to list conda environments (%s); reading the disk instead.", exe, e
            )
            return None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.conda_timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            self.log.warning(
                "'%s env list --json' did not answer within %.1fs; reading the disk instead.",
                exe, self.conda_timeout,
            )
            return None
        if proc.returncode != 0:
            self.log.warning(
                "'%s env list --json' failed with exit status %s: %s; reading the disk instead.",
                exe, proc.returncode, err.decode(errors="replace").strip()[-500:],
            )
            return None
        try:
            envs = json.loads(out)["envs"]
            if not all(isinstance(p, str) for p in envs):
                raise TypeError("envs is not a list of paths")
        except (ValueError, KeyError, TypeError) as e:
            self.log.warning(
                "'%s env list --json' printed no list of environments (%s); reading the disk instead.",
                exe, e,
            )
            return None
        return list(envs)

    # ---- the synchronous walk (runs in the executor) ----

    def _root_hints(self) -> list[str]:
        hints = [os.environ.get("CONDA_ROOT", ""), os.environ.get("MAMBA_ROOT_PREFIX", "")]
        prefix = os.environ.get("CONDA_PREFIX", "")
        if prefix:
            parent = os.path.dirname(_norm(prefix))
            hints.append(os.path.dirname(parent) if os.path.basename(parent) == "envs" else prefix)
        exe = os.environ.get("CONDA_EXE", "")
        if exe:
            hints.append(os.path.dirname(os.path.dirname(_norm(exe))))
        return [h for h in hints if h]

    def _condarc_envs_dirs(self, roots: Iterable[str]) -> list[str]:
        files = [*CONDARC_FILES, *(os.path.join(r, ".condarc") for r in roots)]
        if os.environ.get("CONDARC"):
            files.append(os.environ["CONDARC"])
        dirs: list[str] = []
        for path in files:
            path = _norm(path)
            try:
                with open(path, encoding="utf-8") as f:
                    data = yaml.safe_load(f)
            except FileNotFoundError:
                continue
            except (OSError, yaml.YAMLError) as e:
                self.log.warning("Ignoring unreadable conda settings file %s: %s", path, e)
                continue
            value = data.get("envs_dirs") if isinstance(data, dict) else None
            if isinstance(value, list):
                dirs.extend(str(d) for d in value if d)
        return dirs

    def _walk(self, listed: list[str]) -> list[CondaEnv]:
        """Search the disk (plus what an executable listed); stable, deduplicated."""
        roots: list[str] = []
        for candidate in [*self.conda_roots, *self._root_hints(), *DEFAULT_ROOTS]:
            candidate = _norm(candidate)
            if is_conda_env(candidate) or os.path.isdir(os.path.join(candidate, "envs")):
                roots.append(candidate)

        extra: list[str] = [_norm(p) for p in listed]
        try:
            with open(_norm("~/.conda/environments.txt"), encoding="utf-8") as f:
                extra.extend(_norm(line.strip()) for line in f if line.strip() and not line.startswith("#"))
        except OSError:
            pass
        # An installation reached only through a listed prefix is a root too.
        for prefix in extra:
            parent = os.path.dirname(prefix)
            if _looks_like_root(prefix):
                roots.append(prefix)
            elif os.path.basename(parent) == "envs" and is_conda_env(os.path.dirname(parent)):
                roots.append(os.path.dirname(parent))
        roots = _unique(roots)
        root_reals = {_real(r): r for r in roots if is_conda_env(r)}

        dirs = [*self.envs_dirs, *_split_paths(os.environ.get("CONDA_ENVS_PATH", "")),
                *_split_paths(os.environ.get("CONDA_ENVS_DIRS", "")),
                *self._condarc_envs_dirs(roots), "~/.conda/envs"]
        envs_dirs = _unique([os.path.join(r, "envs") for r in roots] + [_norm(d) for d in dirs])
        known_dirs = {_real(d) for d in envs_dirs}

        ordered: list[str] = []
        for root in roots:
            ordered.append(root)
            ordered.extend(_children(os.path.join(root, "envs")))
        for d in envs_dirs:
            ordered.extend(_children(d))
        ordered.extend(extra)

        found: list[CondaEnv] = []
        seen: set[str] = set()
        for prefix in ordered:
            real = _real(prefix)
            if real in seen or not is_conda_env(prefix):
                continue
            seen.add(real)
            found.append(self._describe(prefix, real, root_reals, known_dirs))
        return found

    def _describe(self, prefix: str, real: str, root_reals: dict[str, str], known_dirs: set[str]) -> CondaEnv:
        is_root = real in root_reals
        if is_root:
            name, root = "base", prefix
        else:
            if _real(os.path.dirname(prefix)) in known_dirs:
                name = os.path.basename(prefix)
            elif os.path.dirname(real) in known_dirs:
                name = os.path.basename(real)
            else:
                name = prefix
            root = None
            for path in (prefix, real):
                parent = os.path.dirname(path)
                owner = os.path.dirname(parent)
                if os.path.basename(parent) == "envs" and is_conda_env(owner):
                    root = root_reals.get(_real(owner), owner)
                    break
        exe = os.path.join(prefix, "bin", "python")
        python = exe if os.path.isfile(exe) and os.access(exe, os.X_OK) else None
        return CondaEnv(
            name=name,
            prefix=prefix,
            python=python,
            python_version=_python_version(prefix, python, self.conda_timeout),
            has_ipykernel=_has_ipykernel(prefix),
            root=root,
            is_root=is_root,
        )


def _children(envs_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(envs_dir))
    except OSError:
        return []
    return [os.path.join(envs_dir, n) for n in names if not n.startswith(".")]


def _unique(paths: Iterable[str]) -> list[str]:
    out: dict[str, str] = {}
    for p in paths:
        out.setdefault(_real(p), p)
    return list(out.values())


def _is_path(name_or_prefix: str) -> bool:
    return "/" in name_or_prefix or name_or_prefix.startswith("~")


def _lookup_prefix(envs: list[CondaEnv], prefix: str) -> Optional[CondaEnv]:
    wanted = _norm(prefix)
    real = _real(wanted)
    return next((e for e in envs if e.prefix == wanted or _real(e.prefix) == real), None)
