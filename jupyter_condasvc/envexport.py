"""``environment.yml`` of a conda environment, and what changed since a service was registered.

Two ways to export, best first:

* ``<conda> env export -p PREFIX`` when a conda, mamba or micromamba
  executable is known (the :class:`~jupyter_condasvc.conda.EnvironmentFinder`
  finds it, and ``use_conda_executable`` allows asking it);
* otherwise from the environment's own files: every ``conda-meta/*.json``
  record gives ``name=version=build`` and its channel, and every
  ``lib/python*/site-packages/*.dist-info`` whose ``INSTALLER`` says ``pip``
  goes under ``- pip:`` as ``name==version``.

Either way the text re-parses with ``yaml.safe_load`` into ``name``,
``channels`` and ``dependencies`` (the machine-specific ``prefix:`` line is
dropped).  At registration the export is stored next to the service record as
``<state_dir>/<name>.environment.yml`` (a :class:`ServiceManager` hook), so
:func:`service_environment` can show the drift between then and now.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import time
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .atomicfile import atomic_write
from .errors import CondaSvcError

#: conda's platform subdirectories, stripped from channel URLs.
SUBDIRS = frozenset(
    {
        "noarch",
        "linux-64",
        "linux-32",
        "linux-aarch64",
        "linux-ppc64le",
        "linux-s390x",
        "linux-armv6l",
        "linux-armv7l",
        "osx-64",
        "osx-arm64",
        "win-32",
        "win-64",
        "win-arm64",
        "emscripten-wasm32",
        "wasi-wasm32",
    }
)


class ExportFailed(CondaSvcError):
    """The environment cannot be exported (it is gone, or unreadable)."""

    status = 409


def registered_path(store: Any, name: str) -> Path:
    return Path(store.state_dir) / f"{name}.environment.yml"


# -- from the environment's files -----------------------------------------------
def channel_name(record: Dict[str, Any]) -> Optional[str]:
    """The channel as an environment file names it: 'conda-forge', 'defaults', or a URL."""
    raw = str(record.get("schannel") or record.get("channel") or "").strip().rstrip("/")
    if not raw or raw in ("pypi", "<develop>", "<unknown>"):
        return None
    if "://" not in raw:
        return raw
    scheme, _, rest = raw.partition("://")
    host, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if parts and parts[-1] in SUBDIRS:
        parts.pop()
    if host == "repo.anaconda.com" and parts[:1] == ["pkgs"]:
        return "defaults"
    if host == "conda.anaconda.org" and parts:
        return "/".join(parts)
    return f"{scheme}://{host}/{'/'.join(parts)}".rstrip("/")


def conda_records(prefix: str) -> List[Dict[str, Any]]:
    out = []
    for path in sorted(glob.glob(os.path.join(glob.escape(prefix), "conda-meta", "*.json"))):
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("name") and record.get("version"):
            out.append(record)
    return out


def pip_packages(prefix: str) -> List[Tuple[str, str]]:
    """(name, version) of what pip installed into the environment's site-packages."""
    found: Dict[str, Tuple[str, str]] = {}
    pattern = os.path.join(glob.escape(prefix), "lib", "python*", "site-packages", "*.dist-info")
    for info in sorted(glob.glob(pattern)):
        try:
            with open(os.path.join(info, "INSTALLER"), encoding="utf-8") as fh:
                installer = fh.read().strip()
        except OSError:
            continue
        if installer != "pip":
            continue
        name = version = None
        try:
            with open(os.path.join(info, "METADATA"), encoding="utf-8", errors="replace") as fh:
                headers = HeaderParser().parse(fh, headersonly=True)
            name, version = headers.get("Name"), headers.get("Version")
        except OSError:
            pass
        if not (name and version):
            stem = os.path.basename(info)[: -len(".dist-info")]
            name, _, version = stem.partition("-")
        if name and version:
            found[_norm_pip(name)] = (name, version)
    return sorted(found.values(), key=lambda nv: nv[0].lower())


def _norm_pip(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def export_from_files(prefix: str, name: str) -> Dict[str, Any]:
    """The environment description read from conda-meta records and pip metadata."""
    records = conda_records(prefix)
    counts: Dict[str, int] = {}
    for record in records:
        channel = channel_name(record)
        if channel:
            counts[channel] = counts.get(channel, 0) + 1
    channels = sorted(counts, key=lambda c: (-counts[c], c))
    deps: List[Any] = sorted(
        (
            f"{r['name']}={r['version']}={r['build']}" if r.get("build") else f"{r['name']}={r['version']}"
            for r in records
        ),
        key=str.lower,
    )
    pips = pip_packages(prefix)
    if pips:
        if not any(r["name"] == "pip" for r in records):
            deps.append("pip")
        deps.append({"pip": [f"{n}=={v}" for n, v in pips]})
    return {"name": name, "channels": channels, "dependencies": deps}


def to_yaml(data: Dict[str, Any], *, source: str) -> str:
    header = f"# {source}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def env_display_name(prefix: str, name: Optional[str]) -> str:
    """An environment file's ``name``: the env's name, or the prefix's last component for a bare path."""
    if name and "/" not in name:
        return name
    return os.path.basename(os.path.normpath(prefix)) or "env"


async def export_environment(
    prefix: str,
    name: Optional[str] = None,
    *,
    conda_executable: Optional[str] = None,
    timeout: float = 60.0,
    log: Any = None,
) -> str:
    """``environment.yml`` text for the environment at ``prefix``."""
    if not await asyncio.to_thread(os.path.isdir, os.path.join(prefix, "conda-meta")):
        raise ExportFailed(f"There is no conda environment at {prefix} any more (no conda-meta folder).")
    display = env_display_name(prefix, name)
    if conda_executable:
        data = await _ask_conda(conda_executable, prefix, timeout, log)
        if data is not None:
            data.pop("prefix", None)
            data["name"] = display
            data.setdefault("channels", [])
            data.setdefault("dependencies", [])
            return to_yaml(data, source=f"`{os.path.basename(conda_executable)} env export -p {prefix}`")
    data = await asyncio.to_thread(export_from_files, prefix, display)
    return to_yaml(data, source=f"exported by jupyter_condasvc from {prefix}/conda-meta and pip metadata")


async def _ask_conda(exe: str, prefix: str, timeout: float, log: Any) -> Optional[Dict[str, Any]]:
    try:
        proc = await asyncio.create_subprocess_exec(
            exe,
            "env",
            "export",
            "-p",
            prefix,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        _warn(log, "Could not run %s to export %s (%s); reading its files instead.", exe, prefix, exc)
        return None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        _warn(
            log, "'%s env export' did not finish within %.0f s; reading the files of %s instead.", exe, timeout, prefix
        )
        return None
    if proc.returncode != 0:
        _warn(
            log,
            "'%s env export -p %s' failed (%s): %s; reading its files instead.",
            exe,
            prefix,
            proc.returncode,
            err.decode(errors="replace").strip()[-300:],
        )
        return None
    try:
        data = yaml.safe_load(out)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies", []), list):
        _warn(log, "'%s env export' printed no environment file; reading the files of %s instead.", exe, prefix)
        return None
    return data


def _warn(log: Any, *args: Any) -> None:
    if log is not None:
        log.warning(*args)


# -- drift ---------------------------------------------------------------------
def packages(text: str) -> Dict[str, str]:
    """``{key: spec}`` of an environment file's dependencies; pip ones keyed ``pip:<name>``."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    out: Dict[str, str] = {}
    deps = data.get("dependencies") if isinstance(data, dict) else None
    for dep in deps if isinstance(deps, list) else []:
        if isinstance(dep, str):
            spec = dep.split("::")[-1].strip()
            name = re.split(r"[=<>!~ ]", spec, maxsplit=1)[0]
            out[name.lower()] = spec
        elif isinstance(dep, dict):
            for item in dep.get("pip") or []:
                spec = str(item).strip()
                name = re.split(r"[=<>!~ \[@]", spec, maxsplit=1)[0]
                out[f"pip:{_norm_pip(name)}"] = spec
    return out


def drift(registered: str, current: str) -> Dict[str, List[Any]]:
    """What was added, removed or changed between two environment files."""
    before, after = packages(registered), packages(current)
    label = lambda key: key if not key.startswith("pip:") else f"{key[4:]} (pip)"  # noqa: E731
    return {
        "added": [after[k] for k in sorted(after) if k not in before],
        "removed": [before[k] for k in sorted(before) if k not in after],
        "changed": [
            {"name": label(k), "registered": before[k], "current": after[k]}
            for k in sorted(after)
            if k in before and before[k] != after[k]
        ],
    }


# -- with services ---------------------------------------------------------------
def finder_executable(finder: Any) -> Optional[str]:
    """The conda executable the finder would ask, if it may ask one."""
    if not getattr(finder, "use_conda_executable", False):
        return None
    find = getattr(finder, "find_executable", None)
    return find() if find is not None else None


async def export_for(finder: Any, prefix: str, name: Optional[str], log: Any = None) -> str:
    exe = await asyncio.to_thread(finder_executable, finder)
    timeout = float(getattr(finder, "conda_timeout", 60.0)) * 4
    return await export_environment(prefix, name, conda_executable=exe, timeout=timeout, log=log)


async def store_export_hook(manager: Any, event: str, name: str, env_prefix: Optional[str]) -> None:
    """ServiceManager hook: keep ``<name>.environment.yml`` from registration; remove it with the service."""
    path = registered_path(manager.store, name)
    if event == "deleted":
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return
    if event == "created" and env_prefix:
        record = await asyncio.to_thread(manager.store.read_record, name)
        text = await export_for(manager.finder, env_prefix, record.resolved.get("env_name"), manager.log)
        await asyncio.to_thread(atomic_write, path, text, 0o600)


async def service_environment(manager: Any, name: str) -> Dict[str, Any]:
    """The service's environment file from registration, now, and the drift between them."""
    record = await asyncio.to_thread(manager.store.require_ours, name)
    resolved = record.resolved
    prefix = resolved.get("env_prefix")
    path = registered_path(manager.store, name)
    try:
        registered: Optional[str] = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError:
        registered = None
    current: Optional[str] = None
    error = None
    if prefix:
        try:
            current = await export_for(manager.finder, prefix, resolved.get("env_name"), manager.log)
        except ExportFailed as exc:
            error = exc.message
    else:
        error = "The service's record names no environment prefix."
    out: Dict[str, Any] = {
        "name": name,
        "env_prefix": prefix,
        "registered": registered,
        "current": current,
        "drift": drift(registered, current) if registered is not None and current is not None else None,
    }
    if error:
        out["error"] = error
    return out
