"""Render unit files and environment files, escaped for systemd's parsers.

Pure functions: given a fully resolved plan, produce text.  Every value that
comes from a user is escaped for the parser that will read it:

* ``ExecStart=`` words are double-quoted; inside, ``\\`` and ``"`` are
  backslash-escaped, control characters become ``\\xNN`` and ``%`` becomes
  ``%%`` (specifiers).  The command carries the ``:`` prefix, which turns
  off ``$VAR`` expansion, so ``$`` stays literal and the ``ExecStart``
  property systemd reports is exactly the submitted argv.
* ``Environment=`` assignments are double-quoted the same way, without the
  ``$`` rule (systemd does not expand variables there).
* Plain values (paths, descriptions) only need ``%%``; anything the line
  parser would strip or continue (surrounding white space, a trailing
  backslash) is refused instead of silently changed.
* The EnvironmentFile uses systemd's env-file syntax, single-quoted where
  possible, double-quoted with escapes otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .errors import InvalidSpec

#: First line of every unit we write.  Its presence (together with our state
#: file) is what makes a unit ours; we never touch a unit without it.
MARKER = (
    "# Managed by jupyter_condasvc: edit it from JupyterLab or `jupyter condasvc edit`, changes made here are "
    "overwritten."
)
#: ``X-`` keys are ignored by systemd but visible in ``systemctl cat``.
MARKER_KEY = "X-CondaSvc-Managed"


@dataclass(frozen=True)
class UnitPlan:
    """Everything needed to render one service, already resolved on the host."""

    name: str
    unit_name: str
    description: str
    exec_argv: Sequence[str]
    working_directory: str
    env_prefix: str
    env_name: str
    environment_file: str
    restart: str
    restart_sec: float
    start_limit_burst: int
    start_limit_interval_sec: float
    memory_max: Optional[str] = None
    cpu_quota: Optional[str] = None
    enabled: bool = False
    notify: bool = False
    timeout_stop_sec: float = 30.0
    timeout_start_sec: Optional[float] = None
    extra_environment: Dict[str, str] = field(default_factory=dict)
    #: The environment's kind (conda.KINDS): venv-like kinds get VIRTUAL_ENV instead of CONDA_PREFIX.
    env_kind: str = "conda"
    #: OnCalendar= expression: the service gets a companion .timer.
    schedule: Optional[str] = None
    #: Health prober started by ExecStartPost=, feeding the systemd watchdog.
    health_argv: Optional[Sequence[str]] = None
    watchdog_sec: Optional[float] = None
    #: Words put before exec_argv so that stderr reaches the journal at its own priority
    #: (``systemd-cat ... --``, which sets up the streams and execs: same PID, Type=exec holds).
    stderr_wrapper: Optional[Sequence[str]] = None
    #: ``(systemd-cat, sh)`` paths: ExecStopPost= logs how each run ended (run history).
    run_end_logger: Optional[Sequence[str]] = None
    #: restart_on_change: the absolute file a ``.path`` unit watches, and the systemctl that restarts.
    watch_path: Optional[str] = None
    systemctl: str = "systemctl"

    @property
    def timer_name(self) -> str:
        return self.unit_name[: -len(".service")] + ".timer"

    @property
    def path_name(self) -> str:
        return self.unit_name[: -len(".service")] + ".path"

    @property
    def restarter_name(self) -> str:
        # ':' is valid in unit names but not in service names: no service's unit can be called this
        return self.unit_name[: -len(".service")] + ":on-change.service"


def _check_line_safe(value: str, what: str) -> None:
    if "\x00" in value or "\n" in value or "\r" in value:
        raise InvalidSpec(f"{what} must not contain line breaks or NUL characters.", field=what)


def _escape_controls(value: str) -> str:
    out = []
    for ch in value:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def quote_exec_word(word: str, what: str = "argv") -> str:
    """Quote one ``ExecStart=`` word so systemd reads back exactly ``word``."""
    _check_line_safe(word, what)
    # A quoted ";" is a literal argument (unquoted it would separate commands).
    body = _escape_controls(word).replace("%", "%%")
    return f'"{body}"'


def render_exec(argv: Sequence[str]) -> str:
    """``:`` (no variable expansion) then the quoted words."""
    return ":" + " ".join(quote_exec_word(w, f"argv[{i}]") for i, w in enumerate(argv))


def quote_assignment(key: str, value: str) -> str:
    """A double-quoted ``Environment=`` assignment."""
    _check_line_safe(value, key)
    return '"' + _escape_controls(f"{key}={value}").replace("%", "%%") + '"'


def plain_value(value: str, what: str) -> str:
    """A value the line parser keeps verbatim once specifiers are escaped."""
    _check_line_safe(value, what)
    if value != value.strip() or value.endswith("\\"):
        raise InvalidSpec(f"{what} must not start or end with white space or end with a backslash.", field=what)
    return value.replace("%", "%%")


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def stderr_wrapper(systemd_cat: str, identifier: str, priority: str) -> List[str]:
    """``systemd-cat`` words that log the program's stdout at info and its stderr at ``priority``.

    systemd has no per-stream priority for ``StandardError=journal``;
    systemd-cat connects both streams to journald itself and then execs the
    program, so the main PID, ``Type=exec`` and the unit's invocation ID (the
    streams are attributed by cgroup) stay what they were.
    """
    return [systemd_cat, f"--identifier={identifier}", f"--stderr-priority={priority}", "--"]


#: SYSLOG_IDENTIFIER of the line ExecStopPost= writes at the end of every run.
RUN_END_IDENTIFIER = "condasvc-run-end"


def render_run_end(logger: Sequence[str]) -> str:
    """``ExecStopPost=`` that logs how the run ended, for run history.

    systemd logs nothing when a run ends successfully (only failures), so
    the run logs it itself: systemd sets ``$SERVICE_RESULT``, ``$EXIT_CODE``
    and ``$EXIT_STATUS`` for ExecStopPost= and expands them here (no ``:``
    prefix, unlike ExecStart=); the line carries the run's invocation ID like
    all of its output.  The process then lingers 0.2 s (``exec sleep``, same
    PID): journald learns a stream's unit from its process when it accepts
    the stream, and a writer already gone by then leaves the line without
    its unit.  ``-``: a failure of this line never fails the unit.
    """
    systemd_cat, sh = logger
    script = "echo result=${SERVICE_RESULT} exit=${EXIT_CODE} status=${EXIT_STATUS}; exec sleep 0.2"
    words = [
        quote_exec_word(systemd_cat).replace("$", "$$"),
        f'"--identifier={RUN_END_IDENTIFIER}"',
        '"--priority=info"',
        quote_exec_word(sh).replace("$", "$$"),
        '"-c"',
        f'"{script}"',
    ]
    return "-" + " ".join(words)


def user_argv(exec_argv: Sequence[str]) -> List[str]:
    """The program's own argv from an ExecStart= argv that may carry :func:`stderr_wrapper`."""
    words = list(exec_argv)
    if words and words[0].endswith("/systemd-cat") and "--" in words:
        return words[words.index("--") + 1 :]
    return words


def conda_environment(plan: UnitPlan, base_path: str) -> Dict[str, str]:
    """What ``conda activate`` (or a venv's ``activate``) sets that a service needs, explicitly."""
    bin_dir = plan.env_prefix.rstrip("/") + "/bin"
    env = {"PATH": f"{bin_dir}:{base_path}" if base_path else bin_dir}
    if plan.env_kind in ("venv", "virtualenv", "uv"):
        env["VIRTUAL_ENV"] = plan.env_prefix
    else:
        env["CONDA_PREFIX"] = plan.env_prefix
        env["CONDA_DEFAULT_ENV"] = plan.env_name
    env["PYTHONUNBUFFERED"] = "1"
    env.update(plan.extra_environment)
    return env


def render_service(plan: UnitPlan, *, base_path: str = "/usr/local/bin:/usr/bin:/bin") -> str:
    """The text of ``<unit_name>``."""
    kind = "conda env" if plan.env_kind in ("conda", "pixi") else plan.env_kind
    description = plan.description or f"{plan.name} ({kind} {plan.env_name})"
    lines: List[str] = [
        MARKER,
        "[Unit]",
        f"Description={plain_value(description, 'description')}",
        f"StartLimitIntervalSec={_seconds(plan.start_limit_interval_sec)}",
        f"StartLimitBurst={plan.start_limit_burst}",
        f"{MARKER_KEY}=yes",
        "",
        "[Service]",
        f"Type={'notify' if plan.notify else 'exec'}",
    ]
    if plan.health_argv:
        # The prober (a child of ExecStartPost, inside this cgroup) pings the watchdog.
        # SIGTERM (not the default SIGABRT) on a health restart: a clean stop, no core dumps.
        lines += ["NotifyAccess=all", f"WatchdogSec={_seconds(plan.watchdog_sec or 60)}", "WatchdogSignal=SIGTERM"]
    elif plan.notify:
        lines.append("NotifyAccess=main")
    if plan.notify:
        # SIGTERM to the runner only; it stops its kernel, then the rest is killed.
        lines.append("KillMode=mixed")
    lines += [
        f"ExecStart={render_exec([*(plan.stderr_wrapper or ()), *plan.exec_argv])}",
        f"WorkingDirectory={plain_value(plan.working_directory, 'cwd')}",
    ]
    if plan.health_argv:
        lines.append(f"ExecStartPost={render_exec(plan.health_argv)}")
    if plan.run_end_logger:
        lines.append(f"ExecStopPost={render_run_end(plan.run_end_logger)}")
    for key, value in conda_environment(plan, base_path).items():
        lines.append(f"Environment={quote_assignment(key, value)}")
    lines += [
        f"EnvironmentFile=-{plain_value(plan.environment_file, 'environment file')}",
        f"Restart={plan.restart}",
        f"RestartSec={_seconds(plan.restart_sec)}",
        f"TimeoutStopSec={_seconds(plan.timeout_stop_sec)}",
    ]
    if plan.timeout_start_sec:
        lines.append(f"TimeoutStartSec={_seconds(plan.timeout_start_sec)}")
    lines += [
        f"SyslogIdentifier={plan.name}",
        "StandardOutput=journal",
        "StandardError=journal",
    ]
    if plan.memory_max:
        lines.append(f"MemoryMax={plan.memory_max}")
    if plan.cpu_quota:
        lines.append(f"CPUQuota={plan.cpu_quota}")
    if plan.schedule:
        # Started by its timer: enabling a scheduled service enables the timer.
        lines.append("")
    else:
        lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def render_timer(plan: UnitPlan) -> str:
    """The companion ``.timer`` of a scheduled service."""
    assert plan.schedule
    return "\n".join(
        [
            MARKER,
            "[Unit]",
            f"Description=Schedule of {plan.name}: {plain_value(plan.schedule, 'schedule')}",
            f"{MARKER_KEY}=yes",
            "",
            "[Timer]",
            f"OnCalendar={plain_value(plan.schedule, 'schedule')}",
            "Persistent=true",
            # The default (1 min) may fire a minute late; schedules here are meant to the second.
            "AccuracySec=1s",
            f"Unit={plan.unit_name}",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def render_path(plan: UnitPlan) -> str:
    """restart_on_change: the ``.path`` unit that watches the file and starts the restarter."""
    assert plan.watch_path
    watched = plain_value(plan.watch_path, "path")
    return "\n".join(
        [
            MARKER,
            "[Unit]",
            f"Description=Restart {plan.name} when {watched} changes",
            f"{MARKER_KEY}=yes",
            "",
            "[Path]",
            f"PathChanged={watched}",
            f"Unit={plan.restarter_name}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def render_restarter(plan: UnitPlan) -> str:
    """restart_on_change: the oneshot the ``.path`` unit starts; try-restart leaves a stopped service stopped."""
    return "\n".join(
        [
            MARKER,
            "[Unit]",
            f"Description=Restart {plan.name}: its file changed",
            f"{MARKER_KEY}=yes",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={render_exec([plan.systemctl, '--user', 'try-restart', plan.unit_name])}",
            "",
        ]
    )


def is_managed(text: str) -> bool:
    """True if ``text`` is a unit this extension wrote."""
    return text.startswith(MARKER + "\n") and f"\n{MARKER_KEY}=yes\n" in text


def _env_file_value(value: str) -> str:
    if "'" not in value and "\n" not in value and "\\" not in value:
        return f"'{value}'"
    out = []
    for ch in value:
        if ch in '"\\`$':
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_environment_file(variables: Dict[str, str]) -> str:
    """Text of the 0600 EnvironmentFile holding the user's variables."""
    lines = ["# Managed by jupyter_condasvc. Variables for one service; mode 0600."]
    for key in sorted(variables):
        lines.append(f"{key}={_env_file_value(variables[key])}")
    return "\n".join(lines) + "\n"
