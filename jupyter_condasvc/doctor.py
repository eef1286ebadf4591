"""``jupyter condasvc doctor``: check the host the way the troubleshooting guide would.

Each check is ``{"id", "ok", "title", "detail", "fix"}``: ``ok`` is True
(fine), False (a problem: ``fix`` says what to do) or None (does not apply,
or cannot be known, e.g. cgroup delegation while the manager is unreachable).
The same list is the CLI's ``doctor`` and ``GET condasvc/api/doctor``.

The checks are the one place each host problem is worded: ``GET host``
(:func:`jupyter_condasvc.host.host_report`, Lab's banners) takes its fixes
from :func:`linger_check`, :func:`cgroups_check` and :func:`probe_manager`,
and the journal diagnosis of the logs API, the log tab and the sidebar is
:func:`journal_diagnosis`, the same words as the ``journal`` check.

Every path and the process environment are parameters, so a healthy host
can be described in tests without being root.  Host facts come from
:mod:`jupyter_condasvc.host` and :mod:`jupyter_condasvc.journal.diagnosis`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import host
from .errors import CondaSvcError
from .invocation import cli_command
from .journal.diagnosis import JournalFacts, journal_facts

if TYPE_CHECKING:
    from .store import ServiceRecord

#: Config files of Jupyter applications a user's server may read.
CONFIG_BASES = ("jupyter_server_config", "jupyter_notebook_config", "jupyter_lab_config", "jupyter_config")
#: Classes whose open_browser decides whether a server opens a browser.
BROWSER_CLASSES = ("ServerApp", "NotebookApp", "LabApp", "LabServerApp", "ExtensionApp")
TEXT_BROWSERS = ("www-browser", "x-www-browser", "lynx", "w3m", "links", "elinks", "browsh")
_PY_SETTING = re.compile(r"^\s*c\.(\w+)\.open_browser\s*=\s*(\w+)", re.MULTILINE)
NO_BROWSER_FLAGS = ("--no-browser", "--ServerApp.open_browser=False", "--NotebookApp.open_browser=False")


@dataclass
class HostPaths:
    """Where the host facts live; tests substitute their own."""

    linger_dir: Path = host.LINGER_DIR
    proc: Path = host.PROC
    pid1_comm: Path = Path("/proc/1/comm")
    journal: Dict[str, Any] = field(default_factory=dict)  # keyword arguments of journal.diagnosis.journal_facts
    config_paths: Optional[Sequence[str]] = None  # Jupyter config directories; None: jupyter_config_path()
    environ: Optional[Mapping[str, str]] = None  # None: os.environ
    cgroup_controllers: Optional[List[str]] = None  # None: read for the manager's cgroup
    cli: Optional[str] = None  # the command hints name; None: invocation.cli_command() for environ's PATH


def check(id: str, ok: Optional[bool], title: str, detail: str, fix: Optional[str] = None) -> Dict[str, Any]:
    return {"id": id, "ok": ok, "title": title, "detail": detail, "fix": None if ok else fix}


async def run_doctor(services: Any, paths: Optional[HostPaths] = None) -> Dict[str, Any]:
    """Every check, in the order a user would fix them."""
    paths = paths or HostPaths()
    user = host.user_name()
    environ = os.environ if paths.environ is None else paths.environ
    cmd = paths.cli
    if not cmd:
        cmd = await asyncio.to_thread(cli_command, environ.get("PATH", ""))
    manager = await probe_manager(services.systemd)
    checks: List[Dict[str, Any]] = [manager_check(manager, cmd)]
    checks.append(journal_check(await asyncio.to_thread(diagnose, **paths.journal)))
    checks.append(await asyncio.to_thread(linger_check, user, paths))
    checks.append(await _cgroups(manager, paths, services.systemd))
    envs = await _conda(services.finder, checks)
    checks.append(_ipykernel(envs))
    records = await asyncio.to_thread(services.store.load_all)
    checks.append(await asyncio.to_thread(_open_browser, paths, records, cmd))
    checks.append(await asyncio.to_thread(_workdirs, records, cmd))
    checks.append(await asyncio.to_thread(_service_envs, records, cmd))
    checks.append(await _runners(records, services))
    checks.append(await _failed(services, records, manager.reachable, cmd=cmd))
    return {"ok": all(c["ok"] is not False for c in checks), "user": user, "checks": checks}


# -- the checks -------------------------------------------------------------------
@dataclass
class ManagerProbe:
    """Does the user manager answer (the wire's HostReport.manager)?"""

    reachable: bool
    version: Optional[str] = None
    control_group: Optional[str] = None
    error: Optional[str] = None  # why not, naming the bus address and where it came from

    def to_json(self) -> Dict[str, Any]:
        if not self.reachable:
            return {"reachable": False, "error": self.error or ""}
        return {"reachable": True, "version": self.version, "control_group": self.control_group}


async def probe_manager(systemd: Any) -> ManagerProbe:
    try:
        version = await systemd.ping()
        control_group = await systemd.manager_property("ControlGroup")
    except CondaSvcError as exc:
        return ManagerProbe(False, error=exc.message)
    return ManagerProbe(True, version=version, control_group=control_group)


def manager_check(probe: ManagerProbe, cmd: str = "jupyter condasvc") -> Dict[str, Any]:
    title = "systemd user manager reachable"
    if probe.reachable:
        return check("manager", True, title, f"systemd {probe.version}, cgroup {probe.control_group or '?'}")
    return check(
        "manager",
        False,
        title,
        probe.error or "",
        "If the bus address named above is wrong (a launcher such as JupyterHub passed a wrong XDG_RUNTIME_DIR or "
        "DBUS_SESSION_BUS_ADDRESS), fix or unset it, or set c.SystemdManager.bus_address. If it is right, the manager "
        "is not running: log in through a normal session (systemd-logind starts `systemd --user`), or enable "
        "lingering so it runs without one: `loginctl enable-linger $USER`. Containers such as Binder or a plain "
        "Docker image run no systemd at all: there you can draft services and preview their unit files "
        f"(`{cmd} unit`), but not run them.",
    )


def _journal_words(f: JournalFacts) -> Dict[str, Tuple[str, Optional[str]]]:
    """What a user reads in each journal state: (message, fix), keyed by :attr:`JournalFacts.state`."""
    rdir, pdir, user_file, runtime_root = f.runtime_dir, f.persistent_dir, f.user_file, f.runtime_root
    return {
        "storage-none": (
            "journald is configured with Storage=none: it stores no logs at all, so services' output is lost.",
            "Set Storage=persistent in /etc/systemd/journald.conf and restart systemd-journald.",
        ),
        "volatile": (
            f"journald keeps logs only in memory ({runtime_root}) because persistent storage ({f.persistent_root}) "
            "is missing; there everything goes into one system file a user cannot read, so your services' logs "
            "are not readable and are lost at reboot.",
            "Make journald's storage persistent: `sudo mkdir -p /var/log/journal && sudo systemd-tmpfiles --create "
            "--prefix /var/log/journal && sudo journalctl --flush` (or set Storage=persistent in "
            "/etc/systemd/journald.conf and restart systemd-journald).",
        ),
        "runtime-journal": (
            f"journald is writing its volatile runtime journal ({rdir}) although persistent storage ({pdir}) "
            f"exists: after flushing it could not remove {rdir}, which happens where /run is not a tmpfs, so it "
            f"went on writing there and never writes your file {user_file}. Your services' logs are not readable.",
            f"As root, repair the running journald: `rm {rdir}/*.journal {f.flushed_flag} && journalctl --flush`; "
            f"and for the next boot give {runtime_root} a tmpfs before journald starts "
            f"(`mount -t tmpfs -o mode=0755 tmpfs {runtime_root}`), as a host booted with systemd has.",
        ),
        "not-flushed": (
            f"journald has not flushed its runtime journal ({rdir}) to persistent storage ({pdir}) yet, so it "
            f"does not write your file {user_file}. Your services' logs are not readable until it does.",
            "Flush the journal to disk: `sudo journalctl --flush` (systemd-journal-flush.service does this at boot).",
        ),
        "split-none": (
            "journald is configured with SplitMode=none: everything goes to the system journal, which you cannot read.",
            "Remove SplitMode=none from journald.conf (the default, uid, gives each user a readable file), "
            "or add yourself to the systemd-journal group: `sudo usermod -aG systemd-journal $USER`.",
        ),
        "unreadable": (
            f"Your journal file {user_file} exists but you cannot read it, so your services' logs are not readable.",
            f"journald grants each user read access to their own file with an ACL; restore it with "
            f"`sudo setfacl -m u:{f.uid}:r {user_file}` (or add yourself to the systemd-journal group).",
        ),
        "no-logs-yet": (f"No logs yet: journald writes {user_file} when one of your services first logs a line.", None),
        "ok": (f"Your services' logs are in {user_file}.", None),
    }


def journal_diagnosis(f: JournalFacts) -> Dict[str, Any]:
    """Can this user read their services' logs, and see journald's rate-limit notes?  (The wire's JournalDiagnosis.)

    ``{"ok", "state", "message", "path", "storage", "user_journal", "user_journal_readable",
    "system_journal_readable", "rate_limit", "problems": [{"code", "message", "fix"}], "notes", "fix"}``;
    ``ok`` is False only when logs cannot be read ("no-logs-yet", a fresh install whose services have not
    logged, is fine).  The doctor's ``journal`` check, ``GET host``, the logs API and Lab's banners all show
    these words.
    """
    state = f.state
    message, fix = _journal_words(f)[state]
    problems = [{"code": state, "message": message, "fix": fix}] if fix is not None else []
    notes: List[str] = []
    if not f.system_readable:
        notes.append(
            "journald's notes about rate-limited (suppressed) messages go to the system journal, which you cannot "
            "read; add yourself to the systemd-journal group to see them as markers in the log."
        )
    interval, burst = f.rate_limit_interval, f.rate_limit_burst
    return {
        "ok": not problems,
        "state": state,
        "message": message,
        "path": str(f.runtime_dir if f.on_runtime else f.user_file),
        "storage": f.storage,
        "user_journal": str(f.user_file),
        "user_journal_readable": f.user_readable,
        "system_journal_readable": f.system_readable,
        "rate_limit": {
            "interval": interval,
            "burst": burst,
            "scope": f"user@{f.uid}.service",
            "markers_visible": f.system_readable,
            "note": (
                f"journald rate-limits all of your services together (as user@{f.uid}.service): at most {burst} "
                f"messages per {interval} (scaled up with free disk space), then it drops lines until the interval "
                "ends."
            ),
        },
        "problems": problems,
        "notes": notes,
        "fix": fix,
    }


def diagnose(uid: Optional[int] = None, **paths: Any) -> Dict[str, Any]:
    """:func:`journal_diagnosis` of this host (``paths``: keyword arguments of ``journal_facts``, for tests)."""
    return journal_diagnosis(journal_facts(uid, **paths))


_diag_cache: Tuple[float, Optional[Dict[str, Any]]] = (0.0, None)


def diagnose_cached(ttl: float = 10.0) -> Dict[str, Any]:
    """:func:`diagnose`, re-checked at most every ``ttl`` seconds (it stats files; a log page shows it)."""
    global _diag_cache
    now = time.monotonic()
    at, value = _diag_cache
    if value is None or now - at > ttl:
        value = diagnose()
        _diag_cache = (now, value)
    return value


def journal_check(d: Dict[str, Any]) -> Dict[str, Any]:
    detail = f"{d['message']} (journald storage: {d['storage']}; state: {d['state']})"
    return check("journal", d["ok"], "journal persistent and readable", detail, d["fix"])


def linger_check(user: str, paths: Optional[HostPaths] = None) -> Dict[str, Any]:
    paths = paths or HostPaths()
    enabled = host.linger_enabled(user, paths.linger_dir)
    if enabled:
        return check(
            "linger",
            True,
            "linger enabled",
            f"{paths.linger_dir / user} exists: your services start at boot and survive logout.",
        )
    logind = host.logind_available(paths.proc)
    pid1 = host.pid1_name(paths.pid1_comm) or "unknown"
    detail = (
        f"Linger is off for {user} (no {paths.linger_dir / user}): services start at login, not at boot, and "
        "stop at logout."
    )
    if logind:
        fix = (
            f"`loginctl enable-linger {user}` (as {user}, or with sudo; or `jupyter condasvc linger on`), so they "
            "start at boot and keep running after logout."
        )
    else:
        detail += f" This machine runs no systemd-logind (PID 1 is {pid1}), so lingering cannot be enabled here."
        fix = (
            "Nothing to do on this machine: without logind nobody starts or stops user managers, so yours runs only "
            "as long as whoever started it keeps it running. On a host booted with systemd, "
            f"`loginctl enable-linger {user}` makes services start at boot and survive logout."
        )
    return check("linger", False, "linger enabled", detail, fix)


async def _cgroups(manager: ManagerProbe, paths: HostPaths, systemd: Any) -> Dict[str, Any]:
    if paths.cgroup_controllers is not None:
        return cgroups_check(paths.cgroup_controllers)
    if not manager.reachable:
        return cgroups_check(None)
    return cgroups_check(await host.enforced_controllers(systemd, manager.control_group))


def cgroups_check(controllers: Optional[List[str]]) -> Dict[str, Any]:
    """The controllers the user manager applies (None: unknown, the manager is unreachable)."""
    title = "cgroup controllers delegated (limits enforced)"
    if controllers is None:
        return check("cgroups", None, title, "Unknown: the user manager cannot be reached.")
    missing = [c for c in ("memory", "cpu") if c not in controllers]
    detail = f"The user manager applies the controllers: {', '.join(controllers) or 'none'}."
    if not missing:
        return check("cgroups", True, title, detail + " memory_max and cpu_quota are enforced.")
    return check(
        "cgroups",
        False,
        title,
        detail
        + f" Not delegated: {', '.join(missing)}, so "
        + " and ".join({"memory": "memory_max (MemoryMax=)", "cpu": "cpu_quota (CPUQuota=)"}[m] for m in missing)
        + " are recorded but not enforced.",
        "On a cgroup v2 host, delegate the controllers to user managers: `sudo systemctl edit user@.service`, add "
        "`[Service]` `Delegate=cpu cpuset io memory pids`, then log out and in again (or reboot). A cgroup v1 or "
        "hybrid host (like this one when cgroup2 sits at /sys/fs/cgroup/unified) cannot delegate them; boot with "
        "systemd.unified_cgroup_hierarchy=1.",
    )


async def _conda(finder: Any, checks: List[Dict[str, Any]]) -> List[Any]:
    from .envexport import finder_executable

    exe = await asyncio.to_thread(getattr(finder, "find_executable", lambda: None))
    envs = await finder.list_environments(refresh=True)
    names = ", ".join(dict.fromkeys(e.name for e in envs))
    how = (
        f"conda executable: {exe}" + ("" if finder_executable(finder) else " (not asked: use_conda_executable is off)")
        if exe
        else (
            "no conda, mamba or micromamba executable on PATH (nor CONDA_EXE/MAMBA_EXE); environments were found by "
            "reading conda's layout on disk"
        )
    )
    if envs:
        checks.append(check("conda", True, "conda found", f"{how}. {len(envs)} environment(s): {names}."))
    else:
        checks.append(
            check(
                "conda",
                False,
                "conda found",
                f"{how}. No conda environment was found.",
                "Install conda (Miniforge: https://conda-forge.org/download/) or tell the extension where it is: "
                "c.EnvironmentFinder.conda_roots = ['/path/to/miniforge3'] (or envs_dirs) in jupyter_server_config.py.",
            )
        )
    return envs


def _ipykernel(envs: List[Any]) -> Dict[str, Any]:
    title = "environments with ipykernel (needed by notebook services)"
    if not envs:
        return check("ipykernel", None, title, "No environments.")
    with_k = [e.name for e in envs if e.has_ipykernel]
    without = [e.name for e in envs if not e.has_ipykernel]
    detail = f"With ipykernel: {', '.join(with_k) or 'none'}. Without: {', '.join(without) or 'none'}."
    if not without:
        return check("ipykernel", True, title, detail)
    example = without[0]
    fix = (
        f"Notebook services can use only environments with ipykernel. Install it where you need it, e.g. "
        f"`conda install -n {example} ipykernel`."
    )
    return check(
        "ipykernel", None if with_k else False, title, detail + " Script and command services do not need it.", fix
    )


def browser_settings(config_paths: Sequence[str]) -> List[Dict[str, Any]]:
    """Every ``open_browser`` setting in Jupyter config files: [{file, class, value}] (value True/False/str)."""
    found: List[Dict[str, Any]] = []
    for d in config_paths:
        for base in CONFIG_BASES:
            files = [Path(d) / f"{base}.json", Path(d) / f"{base}.py"]
            try:
                files += sorted((Path(d) / f"{base}.d").glob("*.json"))
            except OSError:
                pass
            for path in files:
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                if path.suffix == ".json":
                    try:
                        data = json.loads(text)
                    except ValueError:
                        continue
                    for cls in BROWSER_CLASSES:
                        section = data.get(cls) if isinstance(data, dict) else None
                        if isinstance(section, dict) and "open_browser" in section:
                            found.append({"file": str(path), "class": cls, "value": section["open_browser"]})
                else:
                    for m in _PY_SETTING.finditer(text):
                        if m.group(1) in BROWSER_CLASSES:
                            value: Any = {"True": True, "False": False}.get(m.group(2), m.group(2))
                            found.append({"file": str(path), "class": m.group(1), "value": value})
    return found


def _jupyter_argv(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    exe = os.path.basename(argv[0])
    if exe in ("jupyter-lab", "jupyter-notebook", "jupyter-server"):
        return True
    return exe == "jupyter" and len(argv) > 1 and argv[1] in ("lab", "notebook", "server")


def hub_singleuser(environ: Mapping[str, str]) -> Optional[str]:
    """The hub user when this process is a JupyterHub single-user server (or runs in one's terminal), else None.

    The Hub's spawner sets JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_PREFIX and JUPYTERHUB_USER for
    ``jupyterhub-singleuser`` (SingleUserNotebookApp), which never opens a browser.
    """
    if environ.get("JUPYTERHUB_SERVICE_PREFIX") and environ.get("JUPYTERHUB_API_URL"):
        return environ.get("JUPYTERHUB_USER") or "?"
    return None


def _open_browser(paths: HostPaths, records: Dict[str, ServiceRecord], cmd: str = "jupyter condasvc") -> Dict[str, Any]:
    title = "Jupyter will not try to open a browser on this headless machine"
    environ = os.environ if paths.environ is None else paths.environ
    if paths.config_paths is None:
        from jupyter_core.paths import jupyter_config_path

        config_paths: Sequence[str] = jupyter_config_path()
    else:
        config_paths = paths.config_paths
    settings = browser_settings(config_paths)
    disabled = [s for s in settings if s["value"] is False]
    headless = not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY")
    browsers = [b for b in TEXT_BROWSERS if shutil.which(b, path=environ.get("PATH"))]
    if environ.get("BROWSER"):
        browsers.insert(0, f"$BROWSER={environ['BROWSER']}")
    risky = sorted(
        name
        for name, r in records.items()
        if _jupyter_argv(r.resolved.get("exec_argv") or [])
        and not any(a in NO_BROWSER_FLAGS for a in r.resolved.get("exec_argv") or [])
    )
    fix = (
        "Add `c.ServerApp.open_browser = False` to ~/.jupyter/jupyter_server_config.py (`jupyter server "
        f"--generate-config` creates the file), and start Jupyter with `--no-browser`. `{cmd} jupyter-service` "
        "passes both `--no-browser` and `--ServerApp.open_browser=False`."
    )
    if disabled:
        where = ", ".join(f"{s['class']}.open_browser = False in {s['file']}" for s in disabled)
        return check("open-browser", True, title, f"Configured: {where}.")
    hub_user = hub_singleuser(environ)
    if hub_user and not risky:
        return check(
            "open-browser",
            True,
            title,
            f"This is a JupyterHub single-user server (JUPYTERHUB_USER={hub_user}): the Hub starts it with "
            "open_browser off, so the Jupyter config files do not matter here. No service runs Jupyter without "
            "--no-browser.",
        )
    parts = []
    enabled = [s for s in settings if s["value"] is not False]
    if enabled:
        parts.append(
            "Set to open one: "
            + ", ".join(f"{s['class']}.open_browser = {s['value']} in {s['file']}" for s in enabled)
            + "."
        )
    else:
        parts.append("No Jupyter config file sets open_browser = False, so Jupyter opens a browser by default.")
    if headless:
        parts.append(
            "There is no DISPLAY or WAYLAND_DISPLAY, so it would start a text browser"
            + (f" ({', '.join(browsers)})" if browsers else "")
            + " or fail: a Jupyter service then hangs or logs errors instead of serving."
        )
    if hub_user:
        parts = [f"This is a JupyterHub single-user server (JUPYTERHUB_USER={hub_user}), which never opens a browser."]
    if risky:
        parts.append(f"Services running Jupyter without --no-browser: {', '.join(risky)}.")
    ok = not risky and (not headless or bool(hub_user))
    return check("open-browser", ok, title, " ".join(parts), fix)


def _workdirs(records: Dict[str, ServiceRecord], cmd: str = "jupyter condasvc") -> Dict[str, Any]:
    title = "services' working directories exist and are writable"
    bad = []
    for name, r in sorted(records.items()):
        cwd = r.resolved.get("working_directory")
        if not cwd:
            continue
        if not os.path.isdir(cwd):
            bad.append(f"{name}: {cwd} does not exist")
        elif not os.access(cwd, os.W_OK | os.X_OK):
            bad.append(f"{name}: {cwd} is not writable")
    if not records:
        return check("workdirs", True, title, "No services yet.")
    if not bad:
        return check("workdirs", True, title, f"All {len(records)} service(s) have a writable working directory.")
    return check(
        "workdirs",
        False,
        title,
        "; ".join(bad) + ". A service fails with status 200/CHDIR or crashes when it writes there.",
        "Create the directory or fix its permissions (`mkdir -p DIR`, `chmod u+w DIR`), or point the service at one "
        "you own: "
        f"`{cmd} edit NAME --cwd DIR`.",
    )


def _service_envs(records: Dict[str, ServiceRecord], cmd: str = "jupyter condasvc") -> Dict[str, Any]:
    title = "services' environments and interpreters still exist"
    bad = []
    for name, r in sorted(records.items()):
        resolved = r.resolved
        prefix = resolved.get("env_prefix")
        argv = resolved.get("exec_argv") or []
        if prefix and not os.path.isdir(os.path.join(prefix, "conda-meta")):
            bad.append(f"{name}: environment {prefix} is gone")
            continue
        exe = argv[0] if argv else None
        if exe and not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            bad.append(f"{name}: {exe} is missing or not executable")
        if "--python" in argv[:-1]:
            python = argv[argv.index("--python") + 1]
            if not (os.path.isfile(python) and os.access(python, os.X_OK)):
                bad.append(f"{name}: kernel interpreter {python} is missing")
    if not bad:
        return check(
            "service-envs", True, title, f"{len(records)} service(s) checked." if records else "No services yet."
        )
    return check(
        "service-envs",
        False,
        title,
        "; ".join(bad) + ". systemd reports such a service as failed with status 203/EXEC.",
        f"Recreate the environment (see `{cmd} export-env NAME --registered` for what it held), or move the "
        f"service to another one: `{cmd} edit NAME --env OTHER`.",
    )


def runner_python(record: ServiceRecord) -> Optional[str]:
    """The interpreter that runs a service's notebook runner or health check (the server's, when it was created)."""
    resolved = record.resolved
    if resolved.get("runner_python"):
        return resolved["runner_python"]
    argv = resolved.get("exec_argv") or []
    if len(argv) > 2 and argv[1:3] == ["-m", "jupyter_condasvc.runner"]:
        return argv[0]
    return None


#: Run by each runner interpreter: can it import the modules services start it with? (find_spec imports nothing)
_IMPORT_PROBE = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('jupyter_condasvc') else 3)"


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


async def _runners(records: Dict[str, ServiceRecord], services: Any) -> Dict[str, Any]:
    title = "notebook runners and health checks have their interpreter"
    from .process import run

    users: Dict[str, List[str]] = {}
    for name, r in sorted(records.items()):
        python = runner_python(r)
        if python:
            users.setdefault(python, []).append(name)
    if not users:
        return check("runner", True, title, "No notebook service or health check.")

    async def probe(python: str) -> Optional[str]:
        if not await asyncio.to_thread(_is_executable, python):
            return f"{python} is missing"
        try:
            code, _, err = await run([python, "-c", _IMPORT_PROBE], timeout=20.0)
        except (OSError, asyncio.TimeoutError) as exc:
            return f"{python} could not be run ({exc or type(exc).__name__})"
        if code == 3:
            return f"{python} cannot import jupyter_condasvc"
        if code:
            return f"{python} failed ({(err.strip().splitlines() or [f'exit {code}'])[-1][:200]})"
        return None

    problems = await asyncio.gather(*(probe(p) for p in users))
    bad = [f"{problem} (used by {', '.join(users[p])})" for p, problem in zip(users, problems) if problem]
    current = getattr(getattr(services, "defaults", None), "runner_python", None)
    if not bad:
        return check("runner", True, title, f"{', '.join(users)} can import jupyter_condasvc.")
    return check(
        "runner",
        False,
        title,
        "; ".join(bad) + ". Notebook services and health checks run `<the server's python> -m jupyter_condasvc...`, "
        "recorded when they were created or edited; after that environment was upgraded, moved or removed they fail "
        "to start (notebooks) or report no health.",
        "Install jupyter_condasvc into that interpreter's environment again, or re-save each service listed (edit it "
        f"in Lab or with the CLI) so it uses this server's interpreter{f' ({current})' if current else ''}.",
    )


async def _failed(
    services: Any, records: Dict[str, ServiceRecord], manager_ok: bool, cmd: str = "jupyter condasvc"
) -> Dict[str, Any]:
    title = "no service is failed or stuck in a restart loop"
    if not manager_ok:
        return check("failed", None, title, "Unknown: the user manager cannot be reached.")
    if not records:
        return check("failed", True, title, "No services yet.")
    props = await services.systemd.get_properties_many([r.unit for r in records.values()])
    bad = []
    for name, r in sorted(records.items()):
        p = props.get(r.unit) or {}
        if p.get("ActiveState") == "failed":
            bad.append(f"{name}: failed ({p.get('Result')})")
    if not bad:
        return check("failed", True, title, f"None of {len(records)} service(s) is failed.")
    return check(
        "failed",
        False,
        title,
        "; ".join(bad) + ". 'start-limit-hit' means it crashed more than start_limit_burst times "
        "within start_limit_interval_sec and systemd stopped restarting it.",
        f"Read why it failed (`{cmd} logs NAME -p err`), fix the cause, then `{cmd} reset-failed NAME` "
        f"and `{cmd} start NAME`.",
    )
