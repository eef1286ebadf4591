"""The service layer: create, edit, control, inspect and delete services.

Composes the pure parts (spec validation, unit rendering) with the host
(conda environments, the filesystem store, the systemd manager).  Knows
nothing of HTTP.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .errors import Conflict, EnvironmentNotFound, InvalidSpec, JobFailed, NotFound, NotOwned
from .spec import ServiceSpec, merge_patch, parse_spec
from .store import ServiceStore, new_record
from .units import UnitPlan, render_environment_file, render_service

ACTIONS = ("start", "stop", "restart", "enable", "disable", "reset-failed")
U64_MAX = 2**64 - 1


@dataclass
class Defaults:
    """Configured defaults and policies (filled from the app's traitlets)."""

    restart: str = "on-failure"
    restart_sec: float = 5.0
    start_limit_burst: int = 5
    start_limit_interval_sec: float = 60.0
    timeout_stop_sec: float = 30.0
    base_path: str = "/usr/local/bin:/usr/bin:/bin"
    root_dir: str = "/"
    allowed_roots: Sequence[str] = field(default_factory=tuple)
    allow_paths_outside_root: bool = False
    runner_python: str = sys.executable


def _inside(path: str, roots: Sequence[str]) -> bool:
    for root in roots:
        root = os.path.realpath(root)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


class ServiceManager:
    """Everything the API can do to services, as async methods."""

    def __init__(self, systemd: Any, finder: Any, store: ServiceStore, defaults: Defaults, log: Any) -> None:
        self.systemd = systemd
        self.finder = finder
        self.store = store
        self.defaults = defaults
        self.log = log
        self._locks: Dict[str, asyncio.Lock] = {}

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

    async def _env(self, spec: ServiceSpec) -> Any:
        try:
            return await self.finder.get(spec.env)
        except EnvironmentNotFound as exc:
            raise InvalidSpec(exc.message, field="env") from None

    def _find_command(self, command: str, env: Any) -> str:
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
                f"`conda install -n {env.name} {command}`, or give an absolute path.",
                field="argv",
            )
        return found

    async def plan(self, spec: ServiceSpec) -> UnitPlan:
        """Pre-flight checks and resolution; raises InvalidSpec naming the field.

        The filesystem checks run off the event loop (a path may sit on a slow mount).
        """
        env = await self._env(spec)
        return await asyncio.to_thread(self._plan_sync, spec, env)

    def _plan_sync(self, spec: ServiceSpec, env: Any) -> UnitPlan:
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
                f"Command not found: the environment '{env.name}' has no Python interpreter at {env.prefix}/bin/python. "
                f"Install one with `conda install -n {env.name} python`.",
                field="env",
            )
        if spec.kind == "script":
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
                f"The working directory '{cwd}' is not writable by {_user()}; a service that writes files there would fail. "
                "Choose a directory you own.",
                field="cwd",
            )
        return UnitPlan(
            name=spec.name,
            unit_name=self.store.unit_name(spec.name),
            description=spec.description,
            exec_argv=argv,
            working_directory=cwd,
            env_prefix=env.prefix,
            env_name=env.name,
            environment_file=str(self.store.env_path(spec.name)),
            restart=spec.restart or d.restart,
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
        )

    def _notebook_argv(self, spec: ServiceSpec, env: Any, path: str) -> List[str]:
        if not env.has_ipykernel:
            raise InvalidSpec(
                f"The environment '{env.name}' has no ipykernel, so it cannot run notebooks. "
                f"Install it with `conda install -n {env.name} ipykernel`.",
                field="env",
            )
        argv = [self.defaults.runner_python, "-m", "jupyter_condasvc.runner", "--python", env.python, "--notebook", path]
        if spec.output:
            argv += ["--output", self._resolve_path(spec.output, "output", must_exist=False)]
        if spec.parameters:
            argv += ["--parameters-file", str(self.store.state_dir / f"{spec.name}.parameters.json")]
        return argv

    def render(self, plan: UnitPlan, spec: ServiceSpec) -> tuple:
        return render_service(plan, base_path=self.defaults.base_path), render_environment_file(spec.environment)

    async def preview(self, data: Any) -> Dict[str, Any]:
        spec = parse_spec(data)
        plan = await self.plan(spec)
        unit_text, _ = self.render(plan, spec)
        return {"unit_name": plan.unit_name, "unit": unit_text, "variables": sorted(spec.environment)}

    # -- create / edit / delete --------------------------------------------
    async def _check_name_free(self, spec: ServiceSpec) -> None:
        unit = self.store.unit_name(spec.name)
        state = await asyncio.to_thread(self.store.ownership, spec.name)
        if state == "ours":
            raise Conflict(f"A service named '{spec.name}' already exists.", field="name")
        if state == "foreign":
            raise Conflict(f"The name '{spec.name}' is taken by a unit not created by jupyter_condasvc ({unit}).", field="name")
        props = await self.systemd.get_unit_properties(unit, service=False, fresh=True)
        if props.get("LoadState") not in ("not-found", None) or props.get("ActiveState") not in ("inactive", None):
            raise Conflict(
                f"The name '{spec.name}' is taken: systemd already has a unit {unit} "
                f"(from {props.get('FragmentPath') or 'elsewhere'}) that jupyter_condasvc did not create.",
                field="name",
            )

    async def create(self, data: Any) -> Dict[str, Any]:
        spec = parse_spec(data)
        async with self._lock(spec.name):
            await self._check_name_free(spec)
            plan = await self.plan(spec)
            unit_text, env_text = self.render(plan, spec)
            record = new_record(spec.model_dump(), plan.unit_name, _resolved(plan))
            await asyncio.to_thread(self.store.claim, spec.name, record)
            try:
                await asyncio.to_thread(self._write_aux, spec)
                await asyncio.to_thread(self.store.write_files, spec.name, unit_text, env_text)
                await self.systemd.reload()
                if spec.enabled:
                    await self.systemd.enable_unit_files([plan.unit_name])
            except BaseException:
                await asyncio.to_thread(self.store.remove, spec.name)
                await _quietly(self.systemd.reload())
                raise
        return await self.get(spec.name)

    def _write_aux(self, spec: ServiceSpec) -> None:
        if spec.kind == "notebook":
            import json

            from .store import atomic_write

            path = self.store.state_dir / f"{spec.name}.parameters.json"
            if spec.parameters:
                atomic_write(path, json.dumps(spec.parameters), 0o600)
            else:
                path.unlink(missing_ok=True)

    async def update(self, name: str, patch: Any) -> Dict[str, Any]:
        async with self._lock(name):
            record = await asyncio.to_thread(self.store.require_ours, name)
            old = ServiceSpec.model_validate(record["spec"])
            spec = merge_patch(old, patch)
            plan = await self.plan(spec)
            unit_text, env_text = self.render(plan, spec)
            record.update(spec=spec.model_dump(), resolved=_resolved(plan), updated=time.time())
            await asyncio.to_thread(self._write_aux, spec)
            await asyncio.to_thread(self.store.write_files, name, unit_text, env_text)
            await asyncio.to_thread(self.store.write_record, name, record)
            await self.systemd.reload()
            if spec.enabled != old.enabled:
                if spec.enabled:
                    await self.systemd.enable_unit_files([plan.unit_name])
                else:
                    await self.systemd.disable_unit_files([plan.unit_name])
        return await self.get(name)

    async def delete(self, name: str) -> None:
        async with self._lock(name):
            await asyncio.to_thread(self.store.require_ours, name)
            unit = self.store.unit_name(name)
            props = await self.systemd.get_unit_properties(unit, service=False, fresh=True)
            if props.get("ActiveState") not in ("inactive", "failed", None):
                await self.systemd.stop_unit(unit)
            if props.get("UnitFileState") not in (None, "", "disabled", "static"):
                await self.systemd.disable_unit_files([unit])
            await asyncio.to_thread(self.store.remove, name)
            (self.store.state_dir / f"{name}.parameters.json").unlink(missing_ok=True)
            await self.systemd.reload()
            await _quietly(self.systemd.reset_failed_unit(unit))
        self._locks.pop(name, None)

    # -- actions --------------------------------------------------------
    async def act(self, name: str, action: str) -> Dict[str, Any]:
        if action not in ACTIONS:
            raise NotFound(f"Unknown action '{action}'; use one of: {', '.join(ACTIONS)}.")
        async with self._lock(name):
            record = await asyncio.to_thread(self.store.require_ours, name)
            unit = record["unit"]
            result = None
            if action in ("start", "stop", "restart"):
                method = {"start": self.systemd.start_unit, "stop": self.systemd.stop_unit, "restart": self.systemd.restart_unit}[action]
                result = await method(unit)
            elif action == "reset-failed":
                await self.systemd.reset_failed_unit(unit)
            else:
                if action == "enable":
                    await self.systemd.enable_unit_files([unit])
                else:
                    await self.systemd.disable_unit_files([unit])
                record["spec"]["enabled"] = action == "enable"
                record["updated"] = time.time()
                await asyncio.to_thread(self.store.write_record, name, record)
                await self.systemd.reload()
        service = await self.get(name, fresh=True)
        if result not in (None, "done"):
            status = service["status"]
            raise JobFailed(
                f"{action.capitalize()} of '{name}' ended with result '{result}': the service is "
                f"{status['active_state']} ({status['sub_state']}), result '{status['result']}'. See its log for details."
            )
        return service

    # -- reading --------------------------------------------------------
    async def names(self) -> List[str]:
        return await asyncio.to_thread(self.store.names)

    async def get(self, name: str, *, fresh: bool = False) -> Dict[str, Any]:
        record = await asyncio.to_thread(self.store.require_ours, name)
        props = await self.systemd.get_unit_properties(record["unit"], fresh=fresh)
        live = await self._unsignalled(record["unit"], props)
        return _service_json(name, record, props, live)

    async def list(self) -> List[Dict[str, Any]]:
        await self.systemd.connect()  # an unreachable manager is a 503 even with no services
        names = await self.names()
        records = {}
        for name in names:
            try:
                records[name] = await asyncio.to_thread(self.store.require_ours, name)
            except (NotFound, NotOwned):
                continue
        units = [r["unit"] for r in records.values()]
        props = await self.systemd.get_properties_many(units)
        lives = await asyncio.gather(*(self._unsignalled(u, props[u]) for u in units))
        return [_service_json(n, r, props[r["unit"]], live) for (n, r), live in zip(records.items(), lives)]

    async def _unsignalled(self, unit: str, props: Dict[str, Any]) -> Dict[str, Any]:
        if props.get("ActiveState") in ("active", "reloading", "deactivating", "activating"):
            return await self.systemd.get_unsignalled(unit)
        return {}

    async def unit_text(self, name: str) -> Dict[str, Any]:
        record = await asyncio.to_thread(self.store.require_ours, name)
        text = await asyncio.to_thread(self.store.read_unit, name)
        return {"unit_name": record["unit"], "path": str(self.store.unit_path(name)), "unit": text}


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return f"uid {os.getuid()}"


def _resolved(plan: UnitPlan) -> Dict[str, Any]:
    return {
        "exec_argv": list(plan.exec_argv),
        "working_directory": plan.working_directory,
        "env_prefix": plan.env_prefix,
        "env_name": plan.env_name,
    }


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except Exception:  # noqa: BLE001 - best-effort clean-up
        pass


def _num(value: Any) -> Optional[int]:
    if value is None or value == U64_MAX:
        return None
    return int(value)


def _usec_to_iso(value: Any) -> Optional[str]:
    if not value:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(value / 1e6, tz=timezone.utc).isoformat()


def _service_json(name: str, record: Dict[str, Any], props: Dict[str, Any], live: Dict[str, Any]) -> Dict[str, Any]:
    spec = dict(record["spec"])
    status = {
        "load_state": props.get("LoadState"),
        "active_state": props.get("ActiveState"),
        "sub_state": props.get("SubState"),
        "result": props.get("Result"),
        "unit_file_state": props.get("UnitFileState"),
        "main_pid": props.get("MainPID") or None,
        "n_restarts": props.get("NRestarts"),
        "exec_main_status": props.get("ExecMainStatus"),
        "exec_main_code": props.get("ExecMainCode"),
        "active_enter_timestamp": _usec_to_iso(props.get("ActiveEnterTimestamp")),
        "inactive_enter_timestamp": _usec_to_iso(props.get("InactiveEnterTimestamp")),
        "state_change_timestamp": _usec_to_iso(props.get("StateChangeTimestamp")),
        "status_text": props.get("StatusText") or None,
        "memory_current": _num(live.get("MemoryCurrent")),
        "cpu_usage_nsec": _num(live.get("CPUUsageNSec")),
        "fragment_path": props.get("FragmentPath"),
    }
    return {
        "name": name,
        "unit": record["unit"],
        "spec": spec,
        "resolved": record.get("resolved", {}),
        "created": record.get("created"),
        "updated": record.get("updated"),
        "status": status,
    }
