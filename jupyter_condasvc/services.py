"""The service layer: create, edit, control, inspect and delete services.

Composes the pure parts (spec validation, unit rendering) with the host
(conda environments, the filesystem store, the systemd manager).  Knows
nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

from .actions import ACTIONS, COALESCED_ACTIONS
from .activation import snapshot
from .conda import CondaEnv, install_hint
from .errors import Conflict, EnvironmentNotFound, InvalidSpec, JobFailed, NotFound
from .health import health_environment, prober_argv, watchdog_sec
from .host import enforced_controllers, user_name
from .limits import Limits, check_spec
from .prelaunch import default_output_path
from .schedule import check_calendar
from .serviceview import (
    RUNNING_STATES,
    PreviewView,
    ServiceStatus,
    ServiceView,
    UnitText,
    service_status,
    service_view,
    timer_view,
)
from .store import ServiceRecord, ServiceStore, new_record
from .timerstamp import skip_missed_elapses
from .units import (
    UnitPlan,
    render_environment_file,
    render_path,
    render_restarter,
    render_service,
    render_timer,
    stderr_wrapper,
)
from .watchwarn import path_unit_warning

if TYPE_CHECKING:
    from .conda import EnvironmentFinder
    from .journal.follow import LogFollow
    from .journal.history import LogPage
    from .journal.query import LogQuery
    from .spec import ServiceSpec
    from .systemd import Properties, SystemdManager


# pydantic (spec.py) is most of a CLI command's import time, and reading or starting a service needs
# none of it: it is imported when a spec is parsed.
def parse_spec(data: Any) -> ServiceSpec:
    from .spec import parse_spec as parse

    return parse(data)


def merge_patch(old: ServiceSpec, patch: Any) -> ServiceSpec:
    from .spec import merge_patch as merge

    return merge(old, patch)


@dataclass
class Defaults:
    """Configured defaults and policies (filled from the app's traitlets)."""

    restart: str = "on-failure"
    notebook_restart: str = "no"
    runs_keep: int = 50
    runs_max_age_days: float = 30.0
    restart_sec: float = 5.0
    start_limit_burst: int = 5
    start_limit_interval_sec: float = 60.0
    timeout_stop_sec: float = 30.0
    base_path: str = "/usr/local/bin:/usr/bin:/bin"
    root_dir: str = "/"
    allowed_roots: Sequence[str] = field(default_factory=tuple)
    allow_paths_outside_root: bool = False
    runner_python: str = sys.executable
    #: Journal priority of a script's or command's stderr ("" = info, like stdout).
    stderr_priority: str = "err"
    notebook_start_timeout_sec: float = 180.0
    limits: Limits = field(default_factory=Limits)


@dataclass
class Rendered:
    """The files of one service, as text."""

    unit: str
    env: str
    timer: Optional[str] = None
    parameters: Optional[str] = None
    activation: Dict[str, str] = field(default_factory=dict)
    #: restart_on_change: the .path unit and its oneshot restarter (both None without it)
    watch: Tuple[Optional[str], Optional[str]] = (None, None)


def _inside(path: str, roots: Sequence[str]) -> bool:
    for root in roots:
        root = os.path.realpath(root)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


class ServiceManager:
    """Everything the API can do to services, as async methods."""

    def __init__(
        self,
        systemd: SystemdManager,
        finder: EnvironmentFinder,
        store: ServiceStore,
        defaults: Defaults,
        log: logging.Logger,
    ) -> None:
        self.systemd = systemd
        self.finder = finder
        self.store = store
        self.defaults = defaults
        self.log = log
        self._locks: Dict[str, asyncio.Lock] = {}
        #: a start/stop/restart waiting for its service's lock, by (name, action): callers share it (see act)
        self._queued_acts: Dict[Tuple[str, str], asyncio.Future] = {}
        self._controllers: Optional[List[str]] = None
        #: ``await hook(manager, event, name, env_prefix)`` after "created" / "deleted"; failures are logged, never
        #: fatal.
        self.hooks: List[Callable[[ServiceManager, str, str, Optional[str]], Awaitable[None]]] = []

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # -- resolving a spec on this host ------------------------------------
    def _roots(self) -> List[str]:
        return [self.defaults.root_dir, *self.defaults.allowed_roots]

    def _resolve_path(self, value: str, field_name: str, *, must_exist: bool = True) -> str:
        raw = os.path.expanduser(value)
        if not os.path.isabs(raw):
            raw = os.path.join(self.defaults.root_dir, raw)
        real = os.path.realpath(raw)
        if not self.defaults.allow_paths_outside_root and not _inside(real, self._roots()):
            raise InvalidSpec(
                f"'{value}' is outside the server's root directory ({self.defaults.root_dir}); "
                "only paths inside it (or in CondaSvcApp.allowed_roots) may be used.",
                field=field_name,
            )
        if must_exist and not os.path.exists(real):
            raise InvalidSpec(f"'{value}' does not exist (resolved to {real}).", field=field_name)
        return real

    async def _env(self, spec: ServiceSpec) -> CondaEnv:
        try:
            return await self.finder.get(spec.env)
        except EnvironmentNotFound as exc:
            raise InvalidSpec(exc.message, field="env") from None

    def _find_command(self, command: str, env: CondaEnv) -> str:
        if os.path.isabs(command):
            if os.path.isfile(command) and os.access(command, os.X_OK):
                return command
            raise InvalidSpec(f"Command not found: {command} does not exist or is not executable.", field="argv")
        if "/" in command:
            raise InvalidSpec("argv[0] must be a command name or an absolute path.", field="argv")
        search = f"{env.prefix}/bin:{self.defaults.base_path}"
        found = shutil.which(command, path=search)
        if found is None:
            raise InvalidSpec(
                f"Command not found: '{command}' is neither in the environment's bin directory ({env.prefix}/bin) "
                f"nor on the service PATH ({self.defaults.base_path}). Install it into the environment, e.g. "
                f"`{install_hint(env, command)}`, or give an absolute path.",
                field="argv",
            )
        return found

    async def plan(self, spec: ServiceSpec) -> UnitPlan:
        """Pre-flight checks and resolution; raises InvalidSpec naming the field.

        The filesystem checks run off the event loop (a path may sit on a slow mount).
        """
        return (await self._plan_and_calendar(spec))[0]

    async def _plan_and_calendar(self, spec: ServiceSpec) -> Tuple[UnitPlan, Optional[Dict[str, Any]]]:
        """``plan``, and what ``systemd-analyze calendar`` said of the schedule (None without one)."""
        env = await self._env(spec)
        calendar = await check_calendar(spec.schedule) if spec.schedule else None
        return await asyncio.to_thread(self._plan_sync, spec, env), calendar

    def _plan_sync(self, spec: ServiceSpec, env: CondaEnv) -> UnitPlan:
        d = self.defaults
        default_cwd = d.root_dir
        if spec.kind in ("script", "notebook"):
            assert spec.path is not None
            path = self._resolve_path(spec.path, "path")
            if not os.path.isfile(path):
                raise InvalidSpec(f"'{spec.path}' is not a file.", field="path")
            default_cwd = os.path.dirname(path)
        if spec.kind in ("script", "notebook") and (not env.python or not os.access(env.python, os.X_OK)):
            raise InvalidSpec(
                f"Command not found: the environment '{env.name}' has no Python interpreter at "
                f"{env.prefix}/bin/python. "
                f"Install one with `{install_hint(env, 'python')}`, or choose an environment that has Python.",
                field="env",
            )
        if spec.kind == "script":
            assert env.python is not None  # checked above
            argv = [env.python, "-u", path, *spec.args]
        elif spec.kind == "command":
            assert spec.argv is not None
            argv = [self._find_command(spec.argv[0], env), *spec.argv[1:], *spec.args]
        else:
            argv = self._notebook_argv(spec, env, path)
        cwd = self._resolve_path(spec.cwd, "cwd") if spec.cwd else os.path.realpath(default_cwd)
        if not os.path.isdir(cwd):
            raise InvalidSpec(f"The working directory '{spec.cwd or cwd}' is not a directory.", field="cwd")
        if not os.access(cwd, os.W_OK | os.X_OK):
            raise InvalidSpec(
                f"The working directory '{cwd}' is not writable by {user_name()}; a service that writes files there "
                "would fail. "
                "Choose a directory you own.",
                field="cwd",
            )
        health_argv = watchdog = None
        if spec.health_check:
            check = spec.health_check
            health_argv = prober_argv(
                d.runner_python,
                spec.name,
                str(self.store.health_path(spec.name)),
                check.model_dump(),
                status=spec.kind != "notebook",
            )
            watchdog = watchdog_sec(
                check.interval_sec, check.timeout_sec, check.start_period_sec, check.failure_threshold
            )
        return UnitPlan(
            name=spec.name,
            unit_name=self.store.unit_name(spec.name),
            description=spec.description,
            exec_argv=argv,
            working_directory=cwd,
            env_prefix=env.prefix,
            env_name=env.name,
            env_kind=getattr(env, "kind", "conda"),
            environment_file=str(self.store.env_path(spec.name)),
            restart=spec.restart or (d.notebook_restart if spec.kind == "notebook" else d.restart),
            restart_sec=d.restart_sec if spec.restart_sec is None else spec.restart_sec,
            start_limit_burst=d.start_limit_burst if spec.start_limit_burst is None else spec.start_limit_burst,
            start_limit_interval_sec=(
                d.start_limit_interval_sec if spec.start_limit_interval_sec is None else spec.start_limit_interval_sec
            ),
            memory_max=spec.memory_max,
            cpu_quota=spec.cpu_quota,
            enabled=spec.enabled,
            notify=spec.kind == "notebook",
            timeout_stop_sec=d.timeout_stop_sec,
            timeout_start_sec=d.notebook_start_timeout_sec if spec.kind == "notebook" else None,
            schedule=spec.schedule,
            health_argv=health_argv,
            watchdog_sec=watchdog,
            stderr_wrapper=self._stderr_wrapper(spec),
            run_end_logger=self._run_end_logger(),
            watch_path=path if spec.restart_on_change and spec.kind in ("script", "notebook") else None,
            systemctl=shutil.which("systemctl", path=f"{d.base_path}:/usr/bin:/bin") or "/usr/bin/systemctl",
        )

    def _run_end_logger(self) -> Optional[List[str]]:
        path = f"{self.defaults.base_path}:/usr/bin:/bin"
        systemd_cat, sh = shutil.which("systemd-cat", path=path), shutil.which("sh", path=path)
        return [systemd_cat, sh] if systemd_cat and sh else None

    def _stderr_wrapper(self, spec: ServiceSpec) -> Optional[List[str]]:
        """Scripts and commands log stderr at ``stderr_priority`` (notebooks: the runner logs its own)."""
        if spec.kind == "notebook" or not self.defaults.stderr_priority:
            return None
        systemd_cat = shutil.which("systemd-cat", path=self.defaults.base_path) or shutil.which("systemd-cat")
        if systemd_cat is None:
            return None
        return stderr_wrapper(systemd_cat, spec.name, self.defaults.stderr_priority)

    def _notebook_argv(self, spec: ServiceSpec, env: CondaEnv, path: str) -> List[str]:
        if not env.has_ipykernel:
            raise InvalidSpec(
                f"The environment '{env.name}' has no ipykernel, so it cannot run notebooks. "
                f"Install it with `{install_hint(env, 'ipykernel')}`.",
                field="env",
            )
        try:
            import nbformat

            nbformat.validate(nbformat.read(path, as_version=4))
        except Exception as exc:  # noqa: BLE001 - any reason makes it unusable
            raise InvalidSpec(
                f"'{spec.path}' is not a valid notebook: {str(exc).splitlines()[0][:200]}.", field="path"
            ) from None
        assert env.python is not None  # checked by _plan_sync
        argv = [
            self.defaults.runner_python,
            "-m",
            "jupyter_condasvc.runner",
            "--python",
            env.python,
            "--notebook",
            path,
        ]
        if spec.output:
            out = self._resolve_path(spec.output, "output", must_exist=False)
            if not out.endswith(".ipynb"):
                raise InvalidSpec(
                    f"output must be a .ipynb file (the executed notebook), not '{spec.output}'.", field="output"
                )
            self._check_output(spec.name, out, path, spec.output)
            if not os.access(os.path.dirname(out) or ".", os.W_OK):
                raise InvalidSpec(f"The output folder of '{spec.output}' is not writable.", field="output")
            argv += ["--output", out]
        else:
            self._check_output(spec.name, str(default_output_path(Path(path))), path, None)
        if spec.parameters:
            argv += ["--parameters-file", str(self.store.parameters_path(spec.name))]
        argv += [
            "--runs-dir",
            str(self.store.runs_dir(spec.name)),
            "--keep-runs",
            str(self.defaults.runs_keep),
            "--keep-days",
            f"{self.defaults.runs_max_age_days:g}",
        ]
        return argv

    def _check_output(self, name: str, out: str, notebook: str, given: Optional[str]) -> None:
        """Refuse an output that would overwrite the notebook, our own state or another service's files."""
        what = f"output '{given}'" if given else f"The default output '{out}' (set 'output' to choose another)"
        if out == os.path.realpath(notebook):
            raise InvalidSpec(f"{what} is the input notebook itself; the run would overwrite it.", field="output")
        if _inside(out, [str(self.store.state_dir), str(self.store.unit_dir)]):
            raise InvalidSpec(f"{what} is inside jupyter_condasvc's own state or unit directory.", field="output")
        for other, files in self._service_files(exclude=name).items():
            if out in files:
                raise InvalidSpec(
                    f"{what} is a file of the service '{other}' (its program, script, notebook or output).",
                    field="output",
                )

    def _service_files(self, exclude: str) -> Dict[str, set]:
        """Files each other service runs, reads or writes: the absolute paths in its command and its output."""
        out: Dict[str, set] = {}
        for other, record in self.store.load_all().items():
            if other == exclude:
                continue
            argv = [a for a in record.resolved.get("exec_argv") or [] if isinstance(a, str)]
            files = {os.path.realpath(a) for a in argv if a.startswith("/")}
            if "--notebook" in argv and "--output" not in argv and argv.index("--notebook") + 1 < len(argv):
                files.add(str(default_output_path(Path(argv[argv.index("--notebook") + 1]))))
            out[other] = files
        return out

    def _output_warning(self, spec: ServiceSpec, plan: UnitPlan) -> List[str]:
        """Preview: say so before an existing file is overwritten that is not this service's earlier output."""
        if spec.kind != "notebook":
            return []
        argv = list(plan.exec_argv)
        out = (
            argv[argv.index("--output") + 1]
            if "--output" in argv
            else str(default_output_path(Path(argv[argv.index("--notebook") + 1])))
        )
        if not os.path.exists(out):
            return []
        try:
            earlier = self.store.read_record(spec.name).resolved.get("exec_argv") or []
        except Exception:  # noqa: BLE001 - no such service yet
            earlier = []
        earlier_out = (
            earlier[earlier.index("--output") + 1]
            if "--output" in earlier
            else (
                str(default_output_path(Path(earlier[earlier.index("--notebook") + 1])))
                if "--notebook" in earlier
                else None
            )
        )
        if earlier_out == out:
            return []
        return [f"output: '{out}' already exists and is not this service's earlier output; each run will overwrite it."]

    async def render(self, plan: UnitPlan, spec: ServiceSpec) -> Rendered:
        activation: Dict[str, str] = {}
        if spec.activation:
            home = os.path.expanduser("~")  # noqa: ASYNC240 - "~" is $HOME (a passwd lookup only if unset)
            activation = await snapshot(plan.env_prefix, plan.env_name, self.defaults.base_path, home)
        # the health check's URL (it may carry credentials) reaches its prober through this 0600 file only
        check = spec.health_check.model_dump() if spec.health_check else None
        variables = {**activation, **spec.environment, **health_environment(check)}
        return Rendered(
            unit=render_service(plan, base_path=self.defaults.base_path),
            env=render_environment_file(variables),
            timer=render_timer(plan) if plan.schedule else None,
            parameters=json.dumps(spec.parameters) if spec.kind == "notebook" and spec.parameters else None,
            activation=activation,
            watch=(render_path(plan), render_restarter(plan)) if plan.watch_path else (None, None),
        )

    async def _write(self, name: str, r: Rendered, record: Optional[ServiceRecord] = None) -> None:
        await asyncio.to_thread(
            self.store.write_files,
            name,
            r.unit,
            r.env,
            timer_text=r.timer,
            parameters_text=r.parameters,
            record=record,
            watch_texts=r.watch,
        )

    async def preview(self, data: Any) -> PreviewView:
        spec = parse_spec(data)
        check_spec(spec, self.defaults.limits)
        plan, calendar = await self._plan_and_calendar(spec)  # systemd-analyze calendar runs once
        r = await self.render(plan, spec)
        out: PreviewView = {
            "unit_name": plan.unit_name,
            "unit": r.unit,
            "variables": sorted(spec.environment),
            "activation": r.activation,
            "timer": r.timer,
            "path_unit": r.watch[0],
            "warnings": (
                await self._limit_warnings(spec.memory_max, spec.cpu_quota)
                + _runner_warnings(plan)
                + await asyncio.to_thread(self._output_warning, spec, plan)
            ),
        }
        if calendar is not None:
            out["next_runs"] = calendar["next_runs"]
        return out

    async def _limit_warnings(self, memory_max: Optional[str], cpu_quota: Optional[str]) -> List[str]:
        """Limits that systemd records but this host does not enforce."""
        wanted = [(memory_max, "memory", "memory_max"), (cpu_quota, "cpu", "cpu_quota")]
        if not any(v for v, _, _ in wanted):
            return []
        controllers = await self.controllers()
        return [
            f"{field} is recorded but not enforced on this host: the user manager has no delegated '{ctl}' cgroup "
            "controller (`jupyter condasvc doctor` shows how to delegate it)."
            for value, ctl, field in wanted
            if value and ctl not in controllers
        ]

    async def controllers(self) -> List[str]:
        if self._controllers is None:
            try:
                group = await self.systemd.manager_property("ControlGroup")
            except Exception:  # noqa: BLE001 - unknown means "not delegated"
                return []
            self._controllers = await enforced_controllers(self.systemd, group) or []
        return self._controllers

    # -- create / edit / delete --------------------------------------------
    async def _check_name_free(self, spec: ServiceSpec) -> None:
        unit = self.store.unit_name(spec.name)
        state = await asyncio.to_thread(self.store.ownership, spec.name)
        if state == "ours":
            raise Conflict(f"A service named '{spec.name}' already exists.", field="name")
        if state == "foreign":
            raise Conflict(
                f"The name '{spec.name}' is taken by a unit not created by jupyter_condasvc ({unit}).", field="name"
            )
        for name in (unit, self.store.timer_name(spec.name)):
            props = await self.systemd.get_unit_properties(name, fresh=True)
            if props.get("LoadState") not in ("not-found", None) or props.get("ActiveState") not in ("inactive", None):
                raise Conflict(
                    f"The name '{spec.name}' is taken: systemd already has a unit {name} "
                    f"(from {props.get('FragmentPath') or 'elsewhere'}) that jupyter_condasvc did not create.",
                    field="name",
                )

    async def _apply_enabled(self, spec: ServiceSpec, was_enabled: Optional[bool], was_scheduled: bool) -> None:
        """Make 'start at login' true in systemd.

        For a scheduled service that is the timer's enablement only: whether
        the schedule is armed now (the timer started) is pause/resume's job,
        so turning "start at login" off does not stop a running schedule.
        No daemon-reload: enablement is symlinks, read at the next login or
        boot. systemd keeps a loaded unit's old UnitFileState until a reload,
        so the client reports the state on disk (SystemdManager._file_state).
        """
        unit, timer = self.store.unit_name(spec.name), self.store.timer_name(spec.name)
        if was_scheduled and not spec.schedule:
            await _quietly(self.systemd.stop_unit(timer))
        if spec.schedule:
            if spec.enabled:
                await self.systemd.enable_unit_files([timer])
                await self.systemd.start_unit(timer)
            elif was_enabled or was_enabled is None:
                await self.systemd.disable_unit_files([timer])
        elif spec.enabled:
            await self.systemd.enable_unit_files([unit])
        elif was_enabled:
            await self.systemd.disable_unit_files([unit])

    async def create(self, data: Any) -> ServiceView:
        spec = parse_spec(data)
        check_spec(spec, self.defaults.limits)
        async with self._lock(spec.name):
            await self._check_name_free(spec)
            plan = await self.plan(spec)
            rendered = await self.render(plan, spec)
            record = new_record(spec.model_dump(), plan.unit_name, _resolved(plan, rendered))
            await asyncio.to_thread(self.store.claim, spec.name, record)
            try:
                await self._write(spec.name, rendered)
                # A brand-new unit is loaded from disk on first use: no reload (see reload_for).
                await self.systemd.reload_for([plan.unit_name, plan.timer_name, plan.path_name, plan.restarter_name])
                if spec.enabled:
                    await self._apply_enabled(spec, False, False)
                await self._apply_watch(plan, False)
            except BaseException:
                await _quietly(self._apply_watch(plan, True, stop_only=True))
                await _quietly(self.systemd.disable_unit_files([plan.unit_name, plan.timer_name]))
                await asyncio.to_thread(self.store.remove, spec.name)
                await _quietly(self.systemd.reload_for([plan.unit_name, plan.timer_name]))
                raise
            await self._notify("created", spec.name, plan.env_prefix)
        self.systemd.records_changed()
        return await self.get(spec.name)

    async def update(self, name: str, patch: Any) -> ServiceView:
        async with self._lock(name):
            record = await asyncio.to_thread(self.store.require_ours, name)
            old = self._stored_spec(name, record)
            spec = merge_patch(old, patch)
            check_spec(spec, self.defaults.limits)
            plan = await self.plan(spec)
            rendered = await self.render(plan, spec)
            if old.enabled and (bool(old.schedule) != bool(spec.schedule)):
                # What "enabled" points at changes (service <-> timer): undo the old one first.
                await self.systemd.disable_unit_files([plan.timer_name if old.schedule else plan.unit_name])
            resolved = _resolved(plan, rendered)
            now = time.time()
            # What a running process would not pick up without a restart: its command line, directory,
            # environment, variables or parameters ("restart needed" in the UI).
            if resolved != record.resolved or any(
                getattr(old, f) != getattr(spec, f)
                for f in ("environment", "parameters", "memory_max", "cpu_quota", "health_check")
            ):
                record.unit_changed = now
            record.spec, record.resolved, record.updated = spec.model_dump(), resolved, now
            if old.restart_on_change and not plan.watch_path:
                await self._apply_watch(plan, True, stop_only=True)  # before its files go
            await self._write(name, rendered, record)  # files and record together: all or nothing
            await self.systemd.reload_for([plan.unit_name, plan.timer_name, plan.path_name, plan.restarter_name])
            if plan.watch_path:
                await self._apply_watch(plan, old.restart_on_change)
            if (spec.enabled, spec.schedule) != (old.enabled, old.schedule):
                was = old.enabled and (bool(old.schedule) == bool(spec.schedule))
                await self._apply_enabled(spec, was, bool(old.schedule))
            if spec.schedule and not old.schedule:
                # A schedule added by an edit is armed at once, like one given at create and start.
                await self._arm_timer(plan.timer_name)
        self.systemd.records_changed()
        return await self.get(name)

    async def delete(self, name: str) -> None:
        async with self._lock(name):
            record = await asyncio.to_thread(self.store.require_ours, name)
            await asyncio.to_thread(self.store.check_removable, name)  # refuse before stopping anything
            unit, timer = self.store.unit_name(name), self.store.timer_name(name)
            scheduled = record.scheduled or await asyncio.to_thread(self.store.timer_path(name).exists)
            units = [timer, unit] if scheduled else [unit]
            watch_path, restarter = self.store.watch_paths(name)
            if record.spec.get("restart_on_change") or await asyncio.to_thread(watch_path.exists):
                units = [watch_path.name, restarter.name, *units]
            unloadable = []
            for u in units:
                props = await self.systemd.get_unit_properties(u, fresh=True)
                if props.get("LoadState") in ("error", "bad-setting"):
                    # systemd could not load the file (a line too long, a bad setting): it is not
                    # running, and disabling it by file may fail; its links go once the file is gone.
                    unloadable.append(u)
                    continue
                if props.get("ActiveState") not in ("inactive", "failed", None):
                    await self.systemd.stop_unit(u)
                if props.get("UnitFileState") not in (None, "", "disabled", "static"):
                    await self.systemd.disable_unit_files([u])
            if unloadable:
                await _quietly(self.systemd.disable_unit_files(unloadable))
            await asyncio.to_thread(self.store.remove, name)
            await self._notify("deleted", name, None)
            await self.systemd.reload_for(units)
            if unloadable:
                await _quietly(self.systemd.disable_unit_files(unloadable))
            for u in units:
                await _quietly(self.systemd.reset_failed_unit(u))
        self.systemd.records_changed()
        # The name's lock stays: an edit already waiting on it must not overlap a new create of the same name.

    async def _apply_watch(self, plan: UnitPlan, was_watching: bool, *, stop_only: bool = False) -> None:
        """restart_on_change: the .path unit runs (and comes back at login) while the spec asks for it.

        Started whether or not the service runs: its restarter's try-restart leaves a stopped service stopped.
        """
        if stop_only:
            await _quietly(self.systemd.stop_unit(plan.path_name))
            await _quietly(self.systemd.disable_unit_files([plan.path_name]))
            return
        if not plan.watch_path:
            return
        await self.systemd.enable_unit_files([plan.path_name])
        # a watch that failed (out of inotify instances, say) is started afresh, even past its start limit
        await _quietly(self.systemd.reset_failed_unit(plan.path_name))
        # a running .path unit keeps watching the file it was started with: restart it after an edit
        await (self.systemd.restart_unit if was_watching else self.systemd.start_unit)(plan.path_name)

    async def _arm_timer(self, timer: str) -> None:
        """Start a scheduled service's timer; a stopped one without the catch-up run of what it missed while
        paused (see timerstamp)."""
        if (await self.systemd.get_unit_properties(timer, fresh=True)).get("ActiveState") in ("inactive", "failed"):
            try:
                await asyncio.to_thread(skip_missed_elapses, timer)
            except OSError as exc:  # the catch-up then fires: an extra run, nothing lost
                self.log.warning("condasvc: could not reset the stamp of %s: %s", timer, exc)
        await self.systemd.start_unit(timer)

    async def _rearm_watch(self, name: str) -> None:
        """restart_on_change: a start or restart of the service starts a failed watch again (its warning
        said so); one that watches is left alone."""
        path_unit = self.store.watch_names(name)[0]
        if (await self.systemd.get_unit_properties(path_unit, fresh=True)).get("ActiveState") == "failed":
            await _quietly(self.systemd.reset_failed_unit(path_unit))
            await _quietly(self.systemd.start_unit(path_unit))

    async def _notify(self, event: str, name: str, env_prefix: Optional[str]) -> None:
        for hook in self.hooks:
            try:
                await hook(self, event, name, env_prefix)
            except Exception:
                self.log.warning("condasvc: the %s hook for '%s' failed", event, name, exc_info=True)

    # -- actions --------------------------------------------------------
    async def act(self, name: str, action: str) -> ServiceView:
        """Do ``action`` on the service (one action of a service at a time).

        A start, stop or restart asked for while the same action of the same service is queued and has not
        begun shares that one: it begins after both were asked for, so it does what each asked (systemd merges
        a job into a waiting one of the same kind likewise). Under load, restarts no longer queue up behind each
        other when they come faster than systemd can restart the service.
        """
        if action not in COALESCED_ACTIONS:
            return await self._act(name, action)
        key = (name, action)
        pending = self._queued_acts.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._act(name, action, key))
            self._queued_acts[key] = pending
            pending.add_done_callback(lambda f: self._queued_acts.pop(key) if self._queued_acts.get(key) is f else None)
        return await asyncio.shield(pending)

    async def _act(self, name: str, action: str, key: Optional[Tuple[str, str]] = None) -> ServiceView:
        if action not in ACTIONS:
            raise NotFound(f"Unknown action '{action}'; use one of: {', '.join(ACTIONS)}.")
        async with self._lock(name):
            if key is not None and self._queued_acts.get(key) is asyncio.current_task():
                del self._queued_acts[key]  # begun: a caller from now on needs one of its own
            record = await asyncio.to_thread(self.store.require_ours, name)
            unit = record.unit
            timer = self.store.timer_name(name)
            scheduled = record.scheduled
            result = None
            if action in ("pause", "resume") and not scheduled:
                raise Conflict(
                    f"'{name}' has no schedule to {action}; add one with an edit (field schedule).", field="schedule"
                )
            if action == "reset-and-start":
                # The recovery from a start limit: forget the failures, then start (and arm its schedule).
                await self.systemd.reset_failed_unit(unit)
                action_run = "start"
            else:
                action_run = action
            if action_run in ("start", "run-now", "stop", "restart"):
                method = {
                    "start": self.systemd.start_unit,
                    "run-now": self.systemd.start_unit,
                    "stop": self.systemd.stop_unit,
                    "restart": self.systemd.restart_unit,
                }[action_run]
                try:
                    result = await method(unit)
                finally:
                    if action_run != "stop":
                        try:
                            await asyncio.to_thread(self.store.mark_manual, name, self.systemd.last_job.get(unit))
                        except OSError as exc:  # run history then says "boot" for this run; the start itself stands
                            self.log.warning("condasvc: could not note the manual start of '%s': %s", name, exc)
                    if record.spec.get("restart_on_change") and action_run in ("start", "restart"):
                        await _quietly(self._rearm_watch(name))  # never in place of the start's own error
                    if scheduled and action_run in ("start", "restart"):
                        # Starting a scheduled service arms its schedule ("start at login" only decides login and
                        # boot) -- after the start, so an elapse at that moment cannot take the user's run.
                        await self._arm_timer(timer)
            elif action == "pause":
                await self.systemd.stop_unit(timer)
            elif action == "resume":
                await self._arm_timer(timer)
            elif action == "reset-failed":
                await self.systemd.reset_failed_unit(unit)
            else:
                spec = self._stored_spec(name, {**record.spec, "enabled": action == "enable"})
                await self._apply_enabled(spec, record.spec.get("enabled"), scheduled)
                record.spec["enabled"] = spec.enabled
                record.updated = time.time()
                await asyncio.to_thread(self.store.write_record, name, record)
                self.systemd.records_changed()
        service = await self.get(name, fresh=True)
        if result not in (None, "done"):
            status = service["status"]
            hint = (
                " Its start limit was hit (it crashed or was started too often within start_limit_interval_sec): "
                "fix the cause, then reset-and-start (reset-failed, then start)."
                if status.get("start_limit_hit")
                else ""
            )
            raise JobFailed(
                f"{action.capitalize()} of '{name}' ended with result '{result}': the service is "
                f"{status['active_state']} ({status['sub_state']}), result '{status['result']}'.{hint} See its log "
                "for details."
            )
        return service

    def _stored_spec(self, name: str, spec: Union[ServiceRecord, Dict[str, Any]]) -> ServiceSpec:
        """A record's spec (or a stored spec dict), parsed.

        One edited by hand into something invalid is a 409 that says where.
        """
        try:
            return parse_spec(spec.spec if isinstance(spec, ServiceRecord) else spec)
        except InvalidSpec as exc:
            raise Conflict(
                f"The stored record of '{name}' ({self.store.record_path(name)}) was changed outside jupyter_condasvc "
                f"and is no longer valid: {exc.message} Fix or remove that file, or delete the service."
            ) from None

    # -- reading --------------------------------------------------------
    async def names(self) -> List[str]:
        return await asyncio.to_thread(self.store.names)

    async def get(self, name: str, *, fresh: bool = False) -> ServiceView:
        return await self.describe(name, fresh=fresh)

    async def describe(
        self,
        name: str,
        record: Optional[ServiceRecord] = None,
        *,
        fresh: bool = False,
        props: Optional[Properties] = None,
        wait_reading: bool = True,
    ) -> ServiceView:
        """One service as ``GET services/{name}`` shows it.

        ``record``: the caller's copy of the record (else read, re-read only when its file changed);
        ``props``: the unit's properties (else from the systemd client's signal-fed cache, or re-read
        with ``fresh``); ``wait_reading=False``: a memory/CPU reading that is due is not asked for (the
        last one of this run, else none: the view cache reads it in the background).
        """
        if record is None:
            record = await asyncio.to_thread(self.store.load_one, name)
        if props is None:
            props = await self.systemd.get_unit_properties(record.unit, fresh=fresh)
        live = await self._unsignalled(record.unit, props, wait_reading)
        spec = record.spec
        enforced = ("memory" in await self.controllers()) if spec.get("memory_max") else None
        status = service_status(spec, props, live, enforced)
        if spec.get("schedule"):
            timer = await self.systemd.get_unit_properties(self.store.timer_name(name), fresh=fresh)
            status["schedule"] = timer_view(timer)
        if spec.get("health_check"):
            status["health"] = await asyncio.to_thread(_read_json, self.store.health_path(name))
        # from the raw record: a record edited by hand into an invalid spec must still be listed
        warnings = await self._limit_warnings(spec.get("memory_max"), spec.get("cpu_quota"))
        if record.broken:
            warnings.insert(0, f"This service cannot be edited: {record.broken}. Delete it, or restore the file.")
        if spec.get("restart_on_change"):
            path_unit = self.store.watch_names(name)[0]
            watch = await self.systemd.get_unit_properties(path_unit, fresh=fresh)
            watch_warning = path_unit_warning(path_unit, watch, spec.get("path"))
            if watch_warning:
                warnings.append(watch_warning)
        return service_view(name, record, status, warnings)

    def signalled_status(self, name: str) -> Optional[ServiceStatus]:
        """``status`` of a service from what is already known (no I/O): the record last read and the properties
        as systemd's signals left them. None when either was not read yet."""
        record = self.known_record(name)
        if record is None:
            return None
        props = self.systemd.signalled_properties(record.unit)
        if props is None:
            return None
        return service_status(record.spec, props, {})

    def known_record(self, name: str) -> Optional[ServiceRecord]:
        """The record of ``name`` as last read (no I/O), or None: for pushes that follow the signals."""
        return self.store.known_record(name)

    async def records(self) -> Dict[str, ServiceRecord]:
        """Every record that is ours (each re-read only when its file changed)."""
        return await asyncio.to_thread(self.store.load_all)

    def could_be_ours(self, unit: str) -> bool:
        """Whether a unit's name is one this server gives its services (cheap; not a check of ownership)."""
        return unit.endswith(".service") and unit.startswith(self.store.prefix)

    async def list(self) -> List[ServiceView]:
        await self.systemd.connect()  # an unreachable manager is a 503 even with no services
        records = await self.records()
        props = await self.systemd.get_properties_many([r.unit for r in records.values()])
        return list(await asyncio.gather(*(self.describe(n, r, props=props[r.unit]) for n, r in records.items())))

    async def _unsignalled(self, unit: str, props: Properties, wait: bool = True) -> Properties:
        if props.get("ActiveState") in RUNNING_STATES:
            since = props.get("ActiveEnterTimestamp")
            if not wait:
                return self.systemd.peek_unsignalled(unit, since) or {}
            return await self.systemd.get_unsignalled(unit, since)
        return {}

    async def unit_text(self, name: str) -> UnitText:
        def read() -> UnitText:  # one thread hop
            record = self.store.require_ours(name)
            path, text = str(self.store.unit_path(name)), self.store.read_unit(name)
            return {"unit_name": record.unit, "path": path, "unit": text}

        return await asyncio.to_thread(read)

    # -- logs -------------------------------------------------------------
    async def logs(self, name: str, query: LogQuery, *, max_scan: int = 200_000) -> LogPage:
        """A page of the service's journal with the journal diagnosis, in one hop off the event loop."""
        from .doctor import diagnose_cached
        from .journal.history import read_page

        def page() -> LogPage:
            unit = self.store.load_one(name).unit
            out = read_page(unit, os.getuid(), query, max_scan=max_scan, ident=name)  # ident: SyslogIdentifier=
            out.name, out.journal = name, diagnose_cached()
            return out

        return await asyncio.to_thread(page)

    async def follow(
        self, name: str, query: LogQuery, *, cursor: Optional[str] = None, backlog: Optional[int] = None
    ) -> LogFollow:
        """A live follow of the service's journal, after ``cursor`` or from ``backlog`` (default ``query.n``)
        entries before the tail: checked and resolved here, started by the caller (``start`` on the event loop,
        ``tail`` blocking)."""
        from .doctor import diagnose_cached
        from .journal.follow import LogFollow
        from .journal.query import check_cursor

        if cursor is not None:
            check_cursor(cursor)

        def resolve() -> LogFollow:
            unit = self.store.load_one(name).unit
            return LogFollow(
                name,
                unit,
                os.getuid(),
                query,
                cursor=cursor,
                backlog=query.n if backlog is None else backlog,
                journal=diagnose_cached(),
            )

        return await asyncio.to_thread(resolve)


def _resolved(plan: UnitPlan, rendered: Rendered) -> Dict[str, Any]:
    out = {
        "exec_argv": list(plan.exec_argv),
        "working_directory": plan.working_directory,
        "env_prefix": plan.env_prefix,
        "env_name": plan.env_name,
        "activation": sorted(rendered.activation),
    }
    runner = runner_of(plan)
    if runner:
        out["runner_python"] = runner  # doctor checks it still imports jupyter_condasvc
    return out


def runner_of(plan: UnitPlan) -> Optional[str]:
    """The server's interpreter when the unit runs it (notebook runner, health check), else None."""
    argv = list(plan.exec_argv)
    if len(argv) > 2 and argv[1:3] == ["-m", "jupyter_condasvc.runner"]:
        return argv[0]
    if plan.health_argv:
        return str(plan.health_argv[0])
    return None


def _runner_warnings(plan: UnitPlan) -> List[str]:
    """The unit runs the server's interpreter from outside the chosen environment: say what that ties it to."""
    runner = runner_of(plan)
    if not runner or any(
        os.path.abspath(runner).startswith(prefix.rstrip("/") + "/")
        for prefix in (os.path.abspath(plan.env_prefix), os.path.realpath(plan.env_prefix))
    ):
        return []
    notebook = list(plan.exec_argv[1:3]) == ["-m", "jupyter_condasvc.runner"]
    what = " and ".join(w for w, used in (("notebook runner", notebook), ("health check", plan.health_argv)) if used)
    return [
        f"The {what} runs with this server's interpreter {runner}, outside the environment '{plan.env_name}': "
        "upgrading, moving or removing that interpreter's environment breaks this service until it is saved again "
        "(doctor checks it)."
    ]


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


async def _quietly(aw: Awaitable[object]) -> None:
    try:
        await aw
    except Exception:  # noqa: BLE001 - best-effort clean-up
        pass
