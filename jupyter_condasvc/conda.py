"""Discovery of the user's Python environments: conda's, and the others.

One job: answer "which environments does this user have, and what is in
them".  Conda (or mamba / micromamba) is asked when present; otherwise, or
when it fails, the on-disk layout conda itself uses is read:
``~/.conda/environments.txt``, ``envs_dirs`` from the condarc files and the
``CONDA_ENVS_PATH`` / ``CONDA_ENVS_DIRS`` variables, ``~/.conda/envs`` and
``<root>/envs`` of every known installation.  A directory is a conda
environment iff it has ``conda-meta/history``.

Besides conda's, a first run on a machine without conda must still offer
something: the server's own environment (``sys.prefix``), venvs (``python -m
venv``, virtualenv, uv: a ``pyvenv.cfg`` next to ``bin/python``) in the
project (``.venv`` of the server's root and of its direct subfolders),
``~/.virtualenvs/*`` and ``$WORKON_HOME/*``, and pixi environments
(``.pixi/envs/*`` of the root and its direct subfolders).  Every environment
has a ``kind`` (conda, pixi, venv, virtualenv, uv) that says how a service
activates it (units.py): conda-like kinds get ``CONDA_PREFIX`` and their
``activate.d`` scripts, venv-like kinds ``VIRTUAL_ENV``; all get the absolute
interpreter path and an explicit ``PATH``.

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
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Optional

from traitlets import Bool, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from .errors import EnvironmentNotFound

__all__ = ["CondaEnv", "EnvironmentFinder", "install_hint"]

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

#: Kinds of environment; the venv-like ones are activated with VIRTUAL_ENV, the rest like conda.
KINDS = ("conda", "pixi", "venv", "virtualenv", "uv")
VENV_KINDS = frozenset({"venv", "virtualenv", "uv"})

#: Folders of a project that are never searched for environments.
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages"})

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
    #: How it was made, which says how a service activates it (see KINDS).
    kind: str = "conda"
    #: The environment the Jupyter server itself runs in (sys.prefix).
    is_server: bool = False
    #: A short name to show (conda's name, or the prefix shortened with ~ or the root).
    label: str = ""

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
    return is_conda_env(prefix) and any(os.path.isdir(os.path.join(prefix, d)) for d in ("envs", "pkgs", "condabin"))


def _split_paths(value: str) -> list[str]:
    return [p for p in re.split(f"[,{re.escape(os.pathsep)}]", value) if p.strip()]


def venv_kind(prefix: str) -> Optional[str]:
    """'uv', 'virtualenv' or 'venv' for a venv (``pyvenv.cfg`` and ``bin/python``); None otherwise."""
    try:
        with open(os.path.join(prefix, "pyvenv.cfg"), encoding="utf-8") as f:
            keys = {k.strip().lower() for k, sep, _ in (line.partition("=") for line in f) if sep}
    except OSError:
        return None
    if not os.path.exists(os.path.join(prefix, "bin", "python")):
        return None
    if "uv" in keys:
        return "uv"
    if "virtualenv" in keys:
        return "virtualenv"
    return "venv"


def is_pixi_env(prefix: str) -> bool:
    """An environment pixi made: ``<project>/.pixi/envs/<name>`` with a ``conda-meta`` folder."""
    parent = os.path.dirname(prefix)
    return (
        os.path.basename(parent) == "envs"
        and os.path.basename(os.path.dirname(parent)) == ".pixi"
        and os.path.isdir(os.path.join(prefix, "conda-meta"))
    )


def install_hint(env: CondaEnv, package: str) -> str:
    """The command that installs ``package`` into ``env``, in the tool its kind calls for."""
    kind = getattr(env, "kind", "conda")
    if kind == "pixi":
        return f"pixi add {package}"
    if kind in VENV_KINDS or (getattr(env, "is_server", False) and kind != "conda"):
        if package == "python":
            return f"python3 -m venv --clear {env.prefix}"
        tool = "uv pip install -p" if kind == "uv" else None
        if tool:
            return f"{tool} {env.prefix} {package}"
        return f"{env.prefix}/bin/python -m pip install {package}"
    return (
        f"conda install -p {env.prefix} {package}"
        if env.name == env.prefix
        else f"conda install -n {env.name} {package}"
    )


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
            cfg = dict((k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in f) if _)
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
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
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

    #: How the environment this process runs in is labelled (the bridge on another host says what it is there).
    server_words = "Jupyter server's environment"

    conda_roots = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Extra conda installations (root prefixes) to search, besides the "
        "usual install locations (~/miniconda3, ~/anaconda3, ~/miniforge3, /opt/conda, ...) "
        "and the one named by CONDA_ROOT / CONDA_PREFIX. Each root and its envs/ "
        "folder are listed.",
    )
    envs_dirs = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Extra folders that hold conda environments, one environment per "
        "subfolder, besides ~/.conda/envs, envs_dirs from .condarc and "
        "CONDA_ENVS_PATH.",
    )
    virtualenvs_dirs = List(
        Unicode(),
        default_value=["~/.virtualenvs"],
        config=True,
        help="Folders that hold venvs (virtualenv, virtualenvwrapper, uv, python -m venv), one "
        "per subfolder. $WORKON_HOME is searched too. A venv is a folder with pyvenv.cfg "
        "and bin/python.",
    )
    search_project = Bool(
        True,
        config=True,
        help="Offer the venvs (.venv, venv) and pixi environments (.pixi/envs/*) found in the "
        "server's root directory and in its direct subfolders.",
    )
    offer_server_environment = Bool(
        True,
        config=True,
        help="Offer the environment the Jupyter server runs in (sys.prefix), so a machine "
        "without conda can run services at once. It is listed first.",
    )
    use_conda_executable = Bool(
        True,
        config=True,
        help="Ask conda, mamba or micromamba ('env list --json') for the list of "
        "environments when one is installed. If it fails or times out, the "
        "folders conda uses on disk are read instead.",
    )
    conda_executable = Unicode(
        "",
        config=True,
        help="Path of the conda, mamba or micromamba executable to ask. Empty "
        "means: CONDA_EXE, then MAMBA_EXE, then conda, mamba or micromamba on PATH.",
    )
    conda_timeout = Float(
        15.0,
        config=True,
        help="Seconds to wait for 'conda env list --json' (and for an "
        "interpreter asked its version) before giving up on it.",
    )
    cache_seconds = Float(
        30.0,
        config=True,
        help="Seconds a list of environments is reused before the disk is searched again. 0 searches on every request.",
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cache: Optional[tuple[float, list[CondaEnv]]] = None
        self._inflight: Optional[asyncio.Future] = None
        #: The server's root directory, searched for project environments (set by build_services).
        self.project_dir: Optional[str] = None

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
        raise EnvironmentNotFound(f"No environment {what} '{name_or_prefix}'. Known environments: {known}.")

    async def _discover(self) -> list[CondaEnv]:
        loop = asyncio.get_running_loop()
        listed: Optional[list[str]] = None
        if self.use_conda_executable:
            exe = await loop.run_in_executor(None, self.find_executable)
            if exe:
                listed = await self._ask_executable(exe)
        return await loop.run_in_executor(None, self._walk_all, listed or [])

    def _walk_all(self, listed: list[str]) -> list[CondaEnv]:
        """The server's environment first, then the project's, conda's, and the venv folders."""
        conda = self._walk(listed)
        seen = {_real(e.prefix) for e in conda}
        server = _real(sys.prefix) if self.offer_server_environment else None
        first: list[CondaEnv] = []

        def new_envs(prefixes: Iterable[str]) -> list[CondaEnv]:
            """The usable environments among ``prefixes`` not seen yet (a symlinked one counts once)."""
            out = []
            for prefix in prefixes:
                real = _real(prefix)
                if real in seen:
                    continue
                env = self._describe_other(prefix)
                if env is not None:
                    seen.add(real)
                    out.append(env)
            return out

        project = new_envs(self._project_candidates())
        venv_dirs = _unique(_norm(p) for p in [*self.virtualenvs_dirs, os.environ.get("WORKON_HOME", "")] if p)
        others = new_envs(prefix for d in venv_dirs for prefix in _children(d))
        if server is not None:
            for env in (*conda, *project, *others):
                if _real(env.prefix) == server:
                    first.append(_replace(env, self.server_words, is_server=True))
                    break
            else:
                own = self._describe_other(sys.prefix, server=True)
                if own is not None:
                    first.append(own)
        out = first + [e for e in (*project, *conda, *others) if server is None or _real(e.prefix) != server]
        return out

    def _project_candidates(self) -> list[str]:
        """``.venv``/``venv`` and ``.pixi/envs/*`` of the root and of its direct subfolders."""
        if not self.search_project or not self.project_dir:
            return []
        root = _norm(self.project_dir)
        dirs = [root]
        try:
            dirs += [
                os.path.join(root, n)
                for n in sorted(os.listdir(root))
                if not n.startswith(".") and n not in _SKIP_DIRS and os.path.isdir(os.path.join(root, n))
            ]
        except OSError:
            pass
        out: list[str] = []
        for d in dirs:
            out += [os.path.join(d, ".venv"), os.path.join(d, "venv")]
            out += _children(os.path.join(d, ".pixi", "envs"))
        return out

    def _label(self, prefix: str) -> str:
        """The prefix relative to the project (``./.venv``) or to HOME (``~/...``)."""
        if self.project_dir:
            root = _norm(self.project_dir)
            if prefix.startswith(root + os.sep):
                return "./" + os.path.relpath(prefix, root)
        home = _norm("~")
        if prefix.startswith(home + os.sep):
            return "~/" + os.path.relpath(prefix, home)
        return prefix

    def _describe_other(self, prefix: str, server: bool = False) -> Optional[CondaEnv]:
        """A venv or pixi environment (or, with ``server``, whatever sys.prefix is), None otherwise.

        Its name is its absolute prefix, which every API accepts for ``env``.
        """
        prefix = _norm(prefix)
        kind = "pixi" if is_pixi_env(prefix) else venv_kind(prefix)
        if kind is None:
            if server and os.path.isdir(os.path.join(prefix, "conda-meta")):
                kind = "conda"
            elif server:
                kind = "venv"  # a system Python: no activation, PATH and interpreter only
            else:
                return None
        exe = os.path.join(prefix, "bin", "python")
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            if server and os.access(sys.executable, os.X_OK):
                exe = sys.executable
            else:
                return None  # a venv without its interpreter is broken; a pixi env without Python is no use
        label = self._label(prefix)
        if server:
            label = f"{self.server_words} ({label})"
        return self._env(
            prefix,
            exe,
            name=prefix,
            root=None,
            is_root=False,
            kind=kind,
            is_server=server,
            label=label,
        )

    def find_executable(self) -> Optional[str]:
        """The conda (or mamba) executable: the configured one, $CONDA_EXE/$MAMBA_EXE, else one on PATH, or None."""
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
                exe,
                "env",
                "list",
                "--json",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            self.log.warning("Could not run %s to list conda environments (%s); reading the disk instead.", exe, e)
            return None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.conda_timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            self.log.warning(
                "'%s env list --json' did not answer within %.1fs; reading the disk instead.",
                exe,
                self.conda_timeout,
            )
            return None
        if proc.returncode != 0:
            self.log.warning(
                "'%s env list --json' failed with exit status %s: %s; reading the disk instead.",
                exe,
                proc.returncode,
                err.decode(errors="replace").strip()[-500:],
            )
            return None
        try:
            envs = json.loads(out)["envs"]
            if not all(isinstance(p, str) for p in envs):
                raise TypeError("envs is not a list of paths")
        except (ValueError, KeyError, TypeError) as e:
            self.log.warning(
                "'%s env list --json' printed no list of environments (%s); reading the disk instead.",
                exe,
                e,
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
        import yaml  # here: CLI commands that never look for environments skip its import

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

        dirs = [
            *self.envs_dirs,
            *_split_paths(os.environ.get("CONDA_ENVS_PATH", "")),
            *_split_paths(os.environ.get("CONDA_ENVS_DIRS", "")),
            *self._condarc_envs_dirs(roots),
            "~/.conda/envs",
        ]
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

    def _env(self, prefix: str, python: Optional[str], **fields: Any) -> CondaEnv:
        """An environment with what is read from it: its Python's version and whether it has ipykernel."""
        return CondaEnv(
            prefix=prefix,
            python=python,
            python_version=_python_version(prefix, python, self.conda_timeout),
            has_ipykernel=_has_ipykernel(prefix),
            **fields,
        )

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
        return self._env(
            prefix,
            python,
            name=name,
            root=root,
            is_root=is_root,
            kind="pixi" if is_pixi_env(prefix) else "conda",
            label=name if name != prefix else self._label(prefix),
        )


def _children(envs_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(envs_dir))
    except OSError:
        return []
    return [os.path.join(envs_dir, n) for n in names if not n.startswith(".")]


def _replace(env: CondaEnv, server_words: str, **changes) -> CondaEnv:
    data = asdict(env)
    data.update(changes)
    if data.get("is_server") and server_words not in data["label"]:
        data["label"] = f"{data['label']} ({server_words})"
    return CondaEnv(**data)


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
