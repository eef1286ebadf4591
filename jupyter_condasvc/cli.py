"""``jupyter condasvc``: the services from a terminal, with or without a running Jupyter server.

The CLI drives the same :class:`~jupyter_condasvc.services.ServiceManager` the
server extension uses, built by :meth:`CondaSvcApp.build_services` from the
same configuration (``c.CondaSvcApp.*``, ``c.EnvironmentFinder.*``,
``c.SystemdManager.*`` in ``jupyter_server_config.{py,json}`` or
``jupyter_condasvc_config.*`` under the Jupyter config path), and talks to the
systemd user manager over D-Bus directly.  Any ``--Class.trait=value``
argument overrides the configuration for one run, as it does for
``jupyter server``.

Exit codes (scripts may rely on them):

====  ==========================================================
0     success
1     the operation failed (a start job failed, a check failed, the disk said no)
2     usage or validation error: nothing was changed
3     not found (service, environment)
4     conflict: the name is taken, or the unit was not created by jupyter_condasvc
5     the systemd user manager cannot be reached
====  ==========================================================
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .actions import ACTIONS
from .cli_parser import (  # noqa: F401  (EXIT_CODES, build_parser: re-exported for docs/gen_cli.py)
    EXIT_CODES,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HELP_WIDTH,
    PROG,
    build_parser,
    command_in,
)
from .errors import CondaSvcError, InvalidSpec, JobFailed, NotFound

if TYPE_CHECKING:
    from .journal.follow import LogFollow
    from .journal.query import LogEntry

_TRAIT_ARG = re.compile(r"^--[A-Za-z_]\w*\.[A-Za-z_]\w*(=.*)?$")


def exit_code(exc: CondaSvcError) -> int:
    """The documented exit code for a domain error (from its HTTP status)."""
    if isinstance(exc, JobFailed):
        return EXIT_FAILED
    return {400: EXIT_USAGE, 404: EXIT_NOT_FOUND, 403: EXIT_CONFLICT, 409: EXIT_CONFLICT, 503: EXIT_UNREACHABLE}.get(
        exc.status, EXIT_FAILED
    )


class UsageError(InvalidSpec):
    """A bad command line that argparse could not catch itself."""


# -- configuration ---------------------------------------------------------------
def load_settings(overrides: Sequence[str] = ()) -> Any:
    """A CondaSvcApp carrying the user's configuration, as the server extension would see it.

    Reads ``jupyter_config``, ``jupyter_server_config`` (``.py``, ``.json``
    and ``.d/*.json``) and ``jupyter_condasvc_config`` from the Jupyter
    config path, then ``overrides`` (``--Class.trait=value``) on top.
    """
    from jupyter_core.paths import jupyter_config_dir, jupyter_config_path
    from traitlets.config.application import Application
    from traitlets.config.loader import ConfigFileNotFound

    app_class = _settings_class()
    from .conda import EnvironmentFinder
    from .systemd import SystemdManager

    class Loader(Application):
        # a plain traitlets Application: jupyter_core's JupyterApp (its import and its traits) adds nothing
        # the CLI reads but the config path, which is jupyter_core.paths' (as JupyterApp.config_file_paths has it)
        name = "jupyter-condasvc"
        # traitlets' Application declares `classes` a list attribute (and may copy it per instance): not a ClassVar
        classes = [app_class, SystemdManager, EnvironmentFinder]  # noqa: RUF012

    paths = jupyter_config_path()
    if jupyter_config_dir() not in paths:
        paths.insert(0, jupyter_config_dir())
    loader = Loader()
    loader.parse_command_line(list(overrides))
    for base in ("jupyter_config", "jupyter_server_config", "jupyter_condasvc_config"):
        try:
            loader.load_config_file(base, path=paths)
        except ConfigFileNotFound:
            pass
    return app_class(config=loader.config)


def _settings_class() -> Any:
    """``CondaSvcApp`` for reading settings: app.py's own class, without importing jupyter_server.

    The server extension's class derives from jupyter_server's ExtensionApp, whose import alone
    takes longer than most commands. The CLI runs the same file again as its own module, where the
    class derives from a plain traitlets Application (see the top of app.py): the same traits,
    defaults, help and ``build_services``, so every setting stays defined in one place. When the
    server's module is already loaded (a test calling ``main`` in-process), that one is used.
    """
    if "jupyter_condasvc.app" in sys.modules:
        return sys.modules["jupyter_condasvc.app"].CondaSvcApp
    name = "jupyter_condasvc._cli_settings"
    module = sys.modules.get(name)
    if module is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("app.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module.CondaSvcApp


class Context:
    """What one command needs: settings, the service layer (built on first use), output helpers."""

    def __init__(self, args: argparse.Namespace, overrides: Sequence[str]) -> None:
        self.args = args
        self.overrides = list(overrides)
        self._settings: Any = None
        self._services: Any = None
        #: Run after the event loop ends, in the main thread (a blocking follow that Ctrl-C ends).
        self.after: Optional[Callable[[], None]] = None
        #: The host the reads of `envs`, `runs`, `unit` and `export-env` ask (:attr:`ops`): set by ``--host``.
        self.host: Any = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            self._settings = load_settings(self.overrides)
            self._settings.log_level = "ERROR" if not getattr(self.args, "verbose", False) else "DEBUG"
        return self._settings

    @property
    def root(self) -> str:
        return os.path.realpath(os.path.expanduser(getattr(self.args, "root", None) or os.getcwd()))

    @property
    def services(self) -> Any:
        if self._services is None:
            self._services = self.settings.build_services(self.root)
        return self._services

    @property
    def ops(self) -> Any:
        """Where the host-aware reads go: this host's service layer, or the ``--host`` (a RemoteHost)."""
        from .hostops import LocalHost

        return self.host if self.host is not None else LocalHost(self.services)

    async def close(self) -> None:
        if self._services is not None:
            await self._services.systemd.close()

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def progress(self, message: str) -> None:
        if not getattr(self.args, "quiet", False):
            print(message, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def emit(self, data: Any, human: Callable[[Any], object]) -> None:
        if self.json:
            print(json.dumps(data, indent=2, sort_keys=False))
        else:
            human(data)


# -- human output ------------------------------------------------------------------
def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def human_bytes(n: Optional[int]) -> Optional[str]:
    if n is None:
        return None
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return None


def state_of(svc: Dict[str, Any]) -> str:
    s = svc["status"]
    state = f"{s.get('active_state')} ({s.get('sub_state')})"
    if s.get("active_state") == "failed" and s.get("result"):
        state = f"failed ({s['result']})"
        if str(s.get("exit_reason") or "").startswith("killed for memory"):
            state = "failed (killed for memory)"
    if s.get("start_limit_hit"):
        state += ", start limit hit (reset-and-start to recover)"
    elif s.get("crash_looping"):
        state += ", crash-looping"
    return state


def next_run_of(svc: Dict[str, Any]) -> Optional[str]:
    """The next run of a scheduled service ("paused" when its schedule is not armed), else None."""
    sched = svc["status"].get("schedule")
    if not svc["spec"].get("schedule") or sched is None:
        return None
    if not sched.get("armed"):
        return "paused"
    return (sched.get("next_run") or "-")[:19].replace("T", " ")


def print_service(svc: Dict[str, Any]) -> None:
    spec, s, r = svc["spec"], svc["status"], svc.get("resolved", {})
    rows: List[Tuple[str, Any]] = [
        ("name", svc["name"]),
        ("unit", svc["unit"]),
        ("kind", spec["kind"]),
        ("environment", f"{spec['env']} ({r.get('env_prefix', '?')})"),
        ("command", " ".join(_quote(a) for a in r.get("exec_argv", []))),
        ("working directory", r.get("working_directory")),
        ("state", state_of(svc)),
        ("enabled", s.get("unit_file_state")),
        ("main pid", s.get("main_pid")),
        ("restarts", s.get("n_restarts")),
        ("memory", human_bytes(s.get("memory_current"))),
        ("restart policy", spec.get("restart") or "(default)"),
        ("variables", ", ".join(sorted(spec.get("environment") or {})) or None),
    ]
    if spec.get("memory_max") or spec.get("cpu_quota"):
        rows.append(("limits", " ".join(f"{k}={spec[k]}" for k in ("memory_max", "cpu_quota") if spec.get(k))))
    if spec.get("schedule"):
        sched = s.get("schedule") or {}
        armed = "armed" if sched.get("armed") else "paused"
        rows.append(
            (
                "schedule",
                f"{spec['schedule']}, {armed} (next {sched.get('next_run') or '-'}, last "
                f"{sched.get('last_run') or '-'})",
            )
        )
    if s.get("exit_reason"):
        rows.append(("last exit", s["exit_reason"]))
    if s.get("status_text"):
        rows.append(("status", s["status_text"]))
    if s.get("health"):
        rows.append(("health", s["health"].get("state")))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.rjust(width)}: {'-' if value in (None, '') else value}")
    for w in svc.get("warnings") or []:
        print(f"{'warning'.rjust(width)}: {w}")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# -- building specs from flags -------------------------------------------------------
def read_spec_file(path: str) -> Dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"Cannot read the spec file {path}: {exc.strerror or exc}.", field="file") from None
    import yaml  # here: only the commands that parse YAML pay its import

    try:
        data = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise UsageError(
            f"The spec file {path} is not valid YAML or JSON: {str(exc).splitlines()[0]}.", field="file"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"The spec file {path} must hold a mapping of fields (name, kind, env, ...).", field="file")
    return data


def _pairs(values: Optional[List[str]], what: str, parse_value: Callable[[str], Any] = str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} takes KEY=VALUE, not '{item}'.", field=what.lstrip("-"))
        out[key] = parse_value(value)
    return out


def _yaml_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def spec_from_flags(args: argparse.Namespace, command: Optional[List[str]]) -> Dict[str, Any]:
    """The fields the flags give (only those given)."""
    data: Dict[str, Any] = {}
    simple = {
        "kind": "kind",
        "env": "env",
        "path": "path",
        "cwd": "cwd",
        "restart": "restart",
        "restart_sec": "restart_sec",
        "start_limit_burst": "start_limit_burst",
        "start_limit_interval_sec": "start_limit_interval_sec",
        "memory_max": "memory_max",
        "cpu_quota": "cpu_quota",
        "description": "description",
        "schedule": "schedule",
        "output": "output",
        "enabled": "enabled",
        "activation": "activation",
        "restart_on_change": "restart_on_change",
    }
    for attr, key in simple.items():
        value = getattr(args, attr, None)
        if value is not None:
            data[key] = value
    if args.arg is not None:
        data["args"] = list(args.arg)
    if args.var:
        data["environment"] = _pairs(args.var, "--var")
    if args.param:
        data["parameters"] = _pairs(args.param, "--param", _yaml_scalar)
    if args.health_check is not None:
        check = _yaml_scalar(args.health_check)
        if not isinstance(check, dict):
            raise UsageError(
                "--health-check takes a mapping, e.g. '{type: http, url: \"http://127.0.0.1:8080/health\"}'.",
                field="health_check",
            )
        data["health_check"] = check
    if command:
        data["argv"] = list(command)
    return data


def _command_is_args(data: Dict[str, Any], flags: Dict[str, Any]) -> None:
    """For a script or notebook, what follows '--' are its arguments (argv is for commands)."""
    if "argv" in flags and (
        data.get("kind") in ("script", "notebook") or (data.get("path") and data.get("kind") != "command")
    ):
        flags["args"] = [*(flags.get("args") or []), *flags.pop("argv")]


def build_spec(args: argparse.Namespace, command: Optional[List[str]]) -> Dict[str, Any]:
    data = read_spec_file(args.file) if getattr(args, "file", None) else {}
    flags = spec_from_flags(args, command)
    _command_is_args({**data, **flags}, flags)
    if "environment" in flags:
        flags["environment"] = {**(data.get("environment") or {}), **flags["environment"]}
    if "parameters" in flags:
        flags["parameters"] = {**(data.get("parameters") or {}), **flags["parameters"]}
    data.update(flags)
    if args.name:
        data["name"] = args.name
    if "name" not in data:
        raise UsageError("Give the service a name (the first argument, or 'name:' in the spec file).", field="name")
    if "kind" not in data:
        if data.get("argv"):
            data["kind"] = "command"
        elif str(data.get("path") or "").endswith(".ipynb"):
            data["kind"] = "notebook"
        elif data.get("path"):
            data["kind"] = "script"
        else:
            raise UsageError(
                "Say what to run: --path SCRIPT.py, --path NOTEBOOK.ipynb, or a command after '--' "
                "(e.g. `jupyter condasvc create api --env ml -- uvicorn app:app`).",
                field="kind",
            )
    return data


# -- commands --------------------------------------------------------------------------
async def cmd_envs(ctx: Context) -> int:
    data = await ctx.ops.environments(refresh=True)
    ctx.emit(
        data,
        lambda d: print(
            table(
                [
                    (e["name"], e["python_version"], "yes" if e["has_ipykernel"] else "no", e["prefix"])
                    for e in d["environments"]
                ],
                ("NAME", "PYTHON", "IPYKERNEL", "PREFIX"),
            )
        ),
    )
    return EXIT_OK


async def cmd_list(ctx: Context) -> int:
    services = await ctx.services.list()
    services.sort(key=lambda s: s["name"])

    def human(_: Any) -> None:
        if not services:
            print("No services yet. Create one with `jupyter condasvc create NAME --env ENV --path script.py`.")
            return
        print(
            table(
                [
                    (
                        s["name"],
                        s["spec"]["kind"],
                        s["spec"]["env"],
                        state_of(s),
                        s["status"].get("unit_file_state"),
                        s["status"].get("main_pid"),
                        human_bytes(s["status"].get("memory_current")),
                        next_run_of(s),
                    )
                    for s in services
                ],
                ("NAME", "KIND", "ENV", "STATE", "ENABLED", "PID", "MEMORY", "NEXT RUN"),
            )
        )

    ctx.emit({"services": services}, human)
    return EXIT_OK


async def cmd_show(ctx: Context) -> int:
    a = ctx.args
    if a.unit:
        data = await ctx.services.unit_text(a.name)
        ctx.emit(data, lambda d: print(d["unit"] or "", end=""))
        return EXIT_OK
    svc = await ctx.services.get(a.name, fresh=True)
    ctx.emit(svc, print_service)
    return EXIT_OK


async def cmd_create(ctx: Context) -> int:
    a = ctx.args
    spec = build_spec(a, a.command)
    ctx.progress(f"creating {spec['name']}…")
    svc = await ctx.services.create(spec)
    if a.start:
        ctx.progress(f"starting {spec['name']}…")
        svc = await ctx.services.act(spec["name"], "start")

    def human(s: Dict[str, Any]) -> None:
        print(f"Created {s['name']} ({s['unit']}).")
        print_service(s)
        if not a.start:
            print(f"\nStart it with: jupyter condasvc start {s['name']}")

    ctx.emit(svc, human)
    return EXIT_OK


async def cmd_edit(ctx: Context) -> int:
    a = ctx.args
    current = await ctx.services.get(a.name)
    patch: Dict[str, Any] = read_spec_file(a.file) if a.file else {}
    flags = spec_from_flags(a, a.command)
    _command_is_args({**current["spec"], **patch, **flags}, flags)
    if "environment" in flags or a.unset_var:
        env = dict(patch.get("environment") or current["spec"].get("environment") or {})
        env.update(flags.get("environment", {}))
        for key in a.unset_var or []:
            if key not in env:
                raise UsageError(f"The service has no variable {key}.", field="environment")
            env.pop(key)
        flags["environment"] = env
    if "parameters" in flags:
        flags["parameters"] = {**(current["spec"].get("parameters") or {}), **flags["parameters"]}
    patch.update(flags)
    for field in a.unset or []:
        patch[field] = None
    if not patch:
        raise UsageError("Nothing to change: give flags (see `jupyter condasvc edit --help`) or -f PATCH.yaml.")
    ctx.progress(f"updating {a.name}…")
    svc = await ctx.services.update(a.name, patch)

    def human(s: Dict[str, Any]) -> None:
        print(f"Updated {s['name']}.")
        print_service(s)
        if s["status"].get("active_state") in ("active", "activating"):
            print(
                f"\n{s['name']} is running the old version; apply the change with: jupyter condasvc restart {s['name']}"
            )

    ctx.emit(svc, human)
    return EXIT_OK


async def cmd_action(ctx: Context) -> int:
    a = ctx.args
    verb = {
        "start": "starting",
        "stop": "stopping",
        "restart": "restarting",
        "enable": "enabling",
        "disable": "disabling",
        "reset-failed": "resetting",
        "run-now": "running",
        "pause": "pausing",
        "resume": "resuming",
        "reset-and-start": "resetting and starting",
    }[a.action]
    ctx.progress(f"{verb} {a.name}…")
    svc = await ctx.services.act(a.name, a.action)
    ctx.emit(svc, lambda s: print(f"{s['name']}: {state_of(s)}, {s['status'].get('unit_file_state') or '-'}"))
    return EXIT_OK


async def cmd_delete(ctx: Context) -> int:
    a = ctx.args
    ctx.progress(f"deleting {a.name}…")
    await ctx.services.delete(a.name)
    ctx.emit({"deleted": a.name}, lambda d: print(f"Deleted {a.name}."))
    return EXIT_OK


async def cmd_unit(ctx: Context) -> int:
    a = ctx.args
    spec = build_spec(a, a.command)
    preview = await ctx.ops.preview(spec)
    if not ctx.json:
        for w in preview.get("warnings") or []:
            ctx.warn(w)

    def human(p: Dict[str, Any]) -> None:
        print(f"# {p['unit_name']}")
        print(p["unit"], end="" if p["unit"].endswith("\n") else "\n")
        if p.get("timer"):
            print(f"\n# {p['unit_name'].rsplit('.', 1)[0]}.timer")
            print(p["timer"], end="" if p["timer"].endswith("\n") else "\n")
        if p.get("variables"):
            print(f"\n# environment file (0600): {', '.join(p['variables'])}")
        if p.get("next_runs"):
            print("# next runs: " + ", ".join(p["next_runs"]))

    ctx.emit(preview, human)
    return EXIT_OK


async def cmd_runs(ctx: Context) -> int:
    from .journal import format_text

    a = ctx.args
    if a.log:
        page = await ctx.ops.run_logs(a.name, a.log, n=ctx.settings.log_page_max)
        ctx.emit(page, lambda p: sys.stdout.write(format_text(p["entries"])))
        return EXIT_OK
    data = await ctx.ops.runs(a.name, limit=a.limit)

    def human(d: Dict[str, Any]) -> None:
        if not d["runs"]:
            print(f"No runs of {a.name} in the journal yet.")
            return
        rows = []
        for r in d["runs"]:
            exit_ = r["signal"] or ("" if r["exit_status"] is None else str(r["exit_status"]))
            duration = "-" if r["duration_sec"] is None else f"{r['duration_sec']:.1f}s"
            rows.append(
                (
                    r["id"],
                    r["trigger"],
                    r["start"][:19].replace("T", " "),
                    duration,
                    r["state"] if r["state"] != "failed" else f"failed ({r['result']})",
                    exit_ or "-",
                    "yes" if r["has_notebook"] else "-",
                )
            )
        print(table(rows, ("RUN", "TRIGGER", "START (UTC)", "DURATION", "STATE", "EXIT", "NOTEBOOK")))

    ctx.emit(data, human)
    return EXIT_OK


def print_entries(entries: List[LogEntry], *, json_lines: bool) -> None:
    """Log entries to stdout as journalctl-like text, or one JSON object a line (``--json``), flushed at once."""
    from .journal.query import format_text

    if json_lines:
        for e in entries:
            print(json.dumps(e), flush=True)
    else:
        sys.stdout.write(format_text(entries))
        sys.stdout.flush()


async def cmd_logs(ctx: Context) -> int:
    from .journal.query import LogQuery

    a = ctx.args
    raw = {
        "n": None if a.lines is None else str(a.lines),
        "priority": a.priority,
        "since": a.since,
        "until": a.until,
        "text": a.grep,
        "boot": a.boot,
    }
    max_n = ctx.settings.log_page_max
    default_n = max_n if (a.since and a.lines is None) else 100
    try:
        q = LogQuery.parse(lambda k: raw.get(k), max_n=max_n, default_n=default_n)
    except InvalidSpec:
        await ctx.services.logs(a.name, LogQuery(n=0))  # a missing service is said first, as by every command
        raise
    page = await ctx.services.logs(a.name, q, max_scan=ctx.settings.log_max_scan)

    def out(entries: List[LogEntry]) -> None:
        print_entries(entries, json_lines=ctx.json)

    out(page.entries)
    if not a.follow:
        diag = page.journal or {}
        if not page.entries and not ctx.json and diag.get("ok") is False:
            ctx.warn(f"no log entries are readable: {diag['message']} Fix: {diag['fix']}")
        return EXIT_OK
    stream = await ctx.services.follow(a.name, q, cursor=page.last_cursor, backlog=0)
    ctx.progress(f"following {stream.unit} (Ctrl-C ends)…")
    ctx.after = lambda: _follow(stream, out)
    return EXIT_OK


def _follow(stream: LogFollow, out: Callable[[List[LogEntry]], None]) -> None:
    """Print new entries until Ctrl-C (blocking, in the main thread, once the event loop is done)."""
    tail = stream.tail()
    try:
        for batch in tail.batches(stream.query.matcher):
            out(batch)
    finally:
        tail.close()


async def cmd_export_env(ctx: Context) -> int:
    from .envexport import export_for

    a = ctx.args
    if bool(a.name) == bool(a.env):
        raise UsageError("Give a service NAME or --env ENV (one of them).", field="name")
    if a.env and ctx.host is not None:
        raise UsageError("--env does not work with --host yet; give a service NAME.", field="env")
    if a.env:
        env = await ctx.services.finder.get(a.env)
        text = await export_for(ctx.services.finder, env.prefix, env.name, ctx.settings.log)
        data: Dict[str, Any] = {"env": env.name, "prefix": env.prefix, "environment": text}
        chosen = text
    else:
        data = await ctx.ops.service_environment(a.name)
        if a.registered:
            if data["registered"] is None:
                raise NotFound(f"No environment file was stored when '{a.name}' was registered.")
            chosen = data["registered"]
        else:
            if data["current"] is None:
                raise CondaSvcError(data.get("error") or "The environment cannot be exported.")
            chosen = data["current"]
    if a.output:
        # ASYNC240 waived in the CLI: its event loop serves nobody else, so a blocking write or stat delays no one
        Path(a.output).write_text(chosen, encoding="utf-8")  # noqa: ASYNC240
        ctx.progress(f"wrote {a.output}")

    def human(d: Dict[str, Any]) -> None:
        if a.name and a.drift:
            drift = d.get("drift")
            if drift is None:
                print("No environment file was stored at registration; nothing to compare.")
                return
            if not any(drift.values()):
                print(f"No drift: {d['env_prefix']} matches what '{a.name}' was registered with.")
            for spec in drift["added"]:
                print(f"+ {spec}")
            for spec in drift["removed"]:
                print(f"- {spec}")
            for c in drift["changed"]:
                print(f"~ {c['name']}: {c['registered']} -> {c['current']}")
        elif not a.output:
            print(chosen, end="")

    ctx.emit(data, human)
    return EXIT_OK


async def cmd_doctor(ctx: Context) -> int:
    from .doctor import run_doctor

    report = await run_doctor(ctx.services)

    def human(r: Dict[str, Any]) -> None:
        marks = {True: "ok  ", False: "FAIL", None: "--  "}
        for c in r["checks"]:
            print(f"[{marks[c['ok']]}] {c['title']}")
            print(f"       {c['detail']}")
            if c.get("fix"):
                print(f"       fix: {c['fix']}")
        failed = [c["id"] for c in r["checks"] if c["ok"] is False]
        print(f"\n{len(failed)} problem(s)" + (f": {', '.join(failed)}" if failed else "") + ".")

    ctx.emit(report, human)
    return EXIT_OK if report["ok"] else EXIT_FAILED


async def cmd_linger(ctx: Context) -> int:
    from .linger import set_linger

    state = await set_linger(ctx.args.state == "on")

    def human(d: Dict[str, Any]) -> None:
        if d["enabled"]:
            print(f"Linger is on for {d['user']}: services that start at login now start at boot and survive logout.")
        else:
            print(f"Linger is off for {d['user']}: services start at login and stop when {d['user']} logs out.")

    ctx.emit(state, human)
    return EXIT_OK


async def cmd_jupyter_service(ctx: Context) -> int:
    from .host import linger_enabled

    a = ctx.args
    a.env = a.env or os.environ.get("CONDA_DEFAULT_ENV") or "base"
    services = ctx.services
    env = await services.finder.get(a.env)
    lab, server = (os.path.join(env.prefix, "bin", exe) for exe in ("jupyter-lab", "jupyter-server"))
    if os.access(lab, os.X_OK):
        exe, what = lab, "JupyterLab"
    elif os.access(server, os.X_OK):
        exe, what = server, "Jupyter Server"
    else:
        raise InvalidSpec(
            f"The environment '{env.name}' has neither JupyterLab nor Jupyter Server ({env.prefix}/bin/jupyter-lab). "
            f"Install it: `conda install -n {env.name} -c conda-forge jupyterlab`.",
            field="env",
        )
    root = ctx.root
    if not os.path.isdir(root):  # noqa: ASYNC240 - the CLI's own loop (see cmd_export_env)
        raise UsageError(f"--root {root} is not a directory.", field="root")
    argv = [
        exe,
        "--no-browser",
        f"--ip={a.ip}",
        f"--port={a.port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
    ]
    if a.config:
        config = os.path.realpath(os.path.expanduser(a.config))  # noqa: ASYNC240 - the CLI's own loop
        if not os.path.isfile(config):  # noqa: ASYNC240 - the CLI's own loop
            raise UsageError(f"--config {a.config}: no such file.", field="config")
        argv.append(f"--config={config}")
    spec: Dict[str, Any] = {
        "name": a.name,
        "kind": "command",
        "env": a.env,
        "argv": argv,
        "cwd": root,
        "restart": "on-failure",
        "enabled": a.enable,
        "description": f"{what} from conda env {env.name} on http://{a.ip}:{a.port}/",
    }
    state = await asyncio.to_thread(services.store.ownership, a.name)
    created = state != "ours"
    if created:
        ctx.progress(f"registering {what} from '{env.name}' as the user service {a.name}…")
        svc = await services.create(spec)
    else:
        ctx.progress(f"{a.name} exists: updating it…")
        patch = {k: v for k, v in spec.items() if k != "name"}
        svc = await services.update(a.name, patch)
    url = token = None
    if a.start:
        running = svc["status"].get("active_state") in ("active", "activating", "reloading")
        ctx.progress(f"{'restarting' if running else 'starting'} {a.name}…")
        svc = await services.act(a.name, "restart" if running else "start")
        ctx.progress("waiting for Jupyter to answer…")
        info = await _server_info(svc["status"].get("main_pid"), a.wait)
        if info:
            token = info.get("token") or None
            base = info.get("url") or f"http://{a.ip}:{a.port}/"
            url = base.rstrip("/") + ("/lab" if what == "JupyterLab" else "/") + (f"?token={token}" if token else "")
            svc = await services.get(a.name, fresh=True)
    linger = await asyncio.to_thread(linger_enabled)
    data = {
        "created": created,
        "service": svc,
        "url": url,
        "token": token,
        "linger": linger,
        "token_hint": f"{env.prefix}/bin/jupyter server list",
    }

    def human(d: Dict[str, Any]) -> None:
        print(
            f"{what} from '{env.name}' is the user service {a.name} ({svc['unit']}): {state_of(svc)}, "
            f"{svc['status'].get('unit_file_state')}."
        )
        plain = f"http://{a.ip if a.ip not in ('0.0.0.0', '::') else 'HOST'}:{a.port}/"
        print(f"  URL:    {url or plain}")
        print(f"  Token:  `{env.prefix}/bin/jupyter server list` prints it (also in `jupyter condasvc logs {a.name}`)")
        if a.ip in ("127.0.0.1", "localhost", "::1"):
            print(f"  Remote: ssh -L {a.port}:127.0.0.1:{a.port} THIS-HOST, then open the URL on your machine")
        print(f"  Logs:   jupyter condasvc logs {a.name} -f")
        print(f"  Status: systemctl --user status {svc['unit']}")
        if not a.start:
            print(f"  Start:  jupyter condasvc start {a.name}")

    ctx.emit(data, human)
    if not linger:
        ctx.warn(
            "linger is off: this service starts when you log in and stops when you log out, not at boot. "
            "Run `loginctl enable-linger` (see `jupyter condasvc doctor`)."
        )
    if a.start and url is None:
        ctx.warn(f"Jupyter did not write its server info within {a.wait:g} s; check `jupyter condasvc logs {a.name}`.")
    return EXIT_OK


async def _server_info(pid: Optional[int], wait: float) -> Optional[Dict[str, Any]]:
    """The jpserver-PID.json the server writes to the Jupyter runtime directory once it listens."""
    if not pid:
        return None
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            await asyncio.sleep(0.2)
    return None


async def _cmd_hosts(ctx: Context) -> int:
    from .remote_cli import cmd_hosts

    return await cmd_hosts(ctx)


COMMANDS: Dict[str, Callable[[Context], Any]] = {
    "envs": cmd_envs,
    "list": cmd_list,
    "show": cmd_show,
    "create": cmd_create,
    "edit": cmd_edit,
    "delete": cmd_delete,
    "logs": cmd_logs,
    "runs": cmd_runs,
    "unit": cmd_unit,
    "export-env": cmd_export_env,
    "doctor": cmd_doctor,
    "hosts": _cmd_hosts,
    "jupyter-service": cmd_jupyter_service,
    "linger": cmd_linger,
    **{a: cmd_action for a in ACTIONS},
}
TAKES_COMMAND = ("create", "edit", "unit")
_DASH_VALUES = ("--since", "--until")


def split_argv(argv: Sequence[str]) -> Tuple[List[str], List[str], Optional[List[str]]]:
    """(our arguments, --Class.trait overrides, the command after '--' or None)."""
    ours: List[str] = []
    overrides: List[str] = []
    command: Optional[List[str]] = None
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        if arg == "--":
            command = items[i + 1 :]
            break
        if arg in _DASH_VALUES and i + 1 < len(items):
            ours.append(f"{arg}={items[i + 1]}")  # '--since -5m': argparse would take -5m for an option
            i += 2
            continue
        if _TRAIT_ARG.match(arg):
            if "=" in arg:
                overrides.append(arg)
            elif i + 1 < len(items):
                overrides.append(f"{arg}={items[i + 1]}")
                i += 1
            else:
                overrides.append(arg)
        else:
            ours.append(arg)
        i += 1
    return ours, overrides, command


async def _run(ctx: Context) -> int:
    if getattr(ctx.args, "host", None) not in (None, "local"):
        from .remote_cli import run as run_remote

        return await run_remote(ctx)
    try:
        return await COMMANDS[ctx.args.command_name](ctx)
    finally:
        await ctx.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    # jupyter_server -> jupyter_events -> jsonschema imports rfc3987_syntax when installed, which builds a
    # grammar at import (seconds, on every run). The CLI validates no IRIs: keep it out of the process.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, overrides, command = split_argv(argv)
    parser = build_parser(command_in(ours))
    args = parser.parse_args(ours)  # exits 2 with usage on bad arguments
    if command is not None and args.command_name not in TAKES_COMMAND:
        parser.error(f"'{args.command_name}' takes no command after '--'")
    args.command = command or None
    ctx = Context(args, overrides)
    try:
        code = asyncio.run(_run(ctx))
        if ctx.after is not None:
            try:
                ctx.after()
            except KeyboardInterrupt:
                pass
    except KeyboardInterrupt:
        return 130
    except CondaSvcError as exc:
        code = exit_code(exc)
        where = f" (field: {exc.field})" if exc.field else ""
        print(f"{PROG}: error: {exc.message}{where}", file=sys.stderr)
        if ctx.json:
            print(json.dumps({**exc.to_json(), "exit_code": code}))
        return code
    except Exception as exc:
        if getattr(args, "verbose", False):
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
