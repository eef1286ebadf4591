"""The command line's parser, exit codes and help (``jupyter condasvc --help``; docs/gen_cli.py renders it).

Kept apart from :mod:`.cli` (the commands) so each reads in one sitting; it imports nothing of the package but the
action list.
"""

from __future__ import annotations

import argparse
from typing import Any, List, Optional

from .actions import ACTIONS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the operation failed (a job failed, a doctor check failed, the disk refused a write)",
    EXIT_USAGE: "usage or validation error; nothing was changed",
    EXIT_NOT_FOUND: "not found (service or environment)",
    EXIT_CONFLICT: "conflict: name taken, or a unit jupyter_condasvc did not create",
    EXIT_UNREACHABLE: "the systemd user manager cannot be reached",
}
PROG = "jupyter condasvc"
HELP_WIDTH = 100


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, width=HELP_WIDTH, max_help_position=34)


def _spec_flags(p: argparse.ArgumentParser, *, edit: bool = False) -> None:
    p.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="a spec (create/unit) or patch (edit) in YAML or JSON; '-' reads stdin. Flags override its fields",
    )
    p.add_argument(
        "--kind",
        choices=("script", "command", "notebook"),
        help="what to run (default: guessed from --path or a command after '--')",
    )
    p.add_argument("--env", help="conda environment, by name or prefix")
    p.add_argument("--path", help="the script or notebook, relative to the root or absolute")
    p.add_argument(
        "--arg",
        action="append",
        metavar="ARG",
        help="an extra argument for the script or command (repeat for more"
        + ("; replaces the old list" if edit else "")
        + "). One starting with '-' needs --arg=VALUE; or put a script's arguments after '--'",
    )
    p.add_argument("--cwd", help="working directory (default: the script's folder, or the root)")
    p.add_argument(
        "--var",
        action="append",
        metavar="KEY=VALUE",
        help="an environment variable, kept in a 0600 file (repeat for more)",
    )
    p.add_argument("--restart", choices=("no", "on-failure", "always"), help="restart policy")
    p.add_argument("--restart-sec", type=float, metavar="SEC", help="seconds between a crash and the restart")
    p.add_argument(
        "--start-limit-burst",
        type=int,
        metavar="N",
        help="at most N starts per --start-limit-interval-sec, then failed (crash-loop guard)",
    )
    p.add_argument("--start-limit-interval-sec", type=float, metavar="SEC", help="the window of --start-limit-burst")
    p.add_argument("--memory-max", metavar="SIZE", help="MemoryMax=, e.g. 512M, 4G, 50%%")
    p.add_argument("--cpu-quota", metavar="PCT", help="CPUQuota=, e.g. 50%% (half a core), 200%%")
    p.add_argument(
        "--enable",
        dest="enabled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start at login (and at boot with linger)",
    )
    p.add_argument("--description", help="one line, shown by systemctl")
    p.add_argument(
        "--schedule", metavar="CALENDAR", help="run on a systemd calendar (OnCalendar=), e.g. daily or 'Mon..Fri 09:00'"
    )
    p.add_argument("--output", help="notebook kind: where the executed copy goes")
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="notebook parameter (value parsed as YAML: 3, 0.5, true, text)",
    )
    p.add_argument(
        "--activation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="snapshot what `conda activate` sets (activate.d) into the environment",
    )
    p.add_argument(
        "--health-check", metavar="YAML", help="probe, e.g. '{type: http, url: \"http://127.0.0.1:8080/health\"}'"
    )
    p.add_argument(
        "--restart-on-change",
        dest="restart_on_change",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="script and notebook kinds: restart the service (when it runs) each time its file changes",
    )


class _Unbuilt:
    """A subcommand's parser not built for this run: every call on it does nothing (see build_parser)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def command_in(argv: List[str]) -> Optional[str]:
    """The subcommand ``argv`` names (the first word that is not an option or a top-level option's value), or
    None when it asks for help or the version, or names none."""
    items = iter(argv)
    for arg in items:
        if arg in ("-h", "--help", "--version"):
            return None
        if arg in ("--host", "--root"):
            next(items, None)
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, one whose other subcommands are listed without their arguments (a
    run of one command need not build ~150 arguments it will not parse: a few ms of every CLI start)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output on stdout"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress messages on stderr"
    )
    common.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what happens (to stderr)"
    )
    rooted = argparse.ArgumentParser(add_help=False)
    rooted.add_argument(
        "--root",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the directory paths are relative to and must stay inside (default: the current directory)",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_formatter,
        parents=[common, rooted],
        description="Run notebooks, scripts and commands from conda environments as systemd user services, "
        "from the terminal. Works without a running Jupyter server: it talks to your systemd user manager "
        "directly and reads the same configuration as the server extension.",
        epilog="Any --Class.trait=value argument (e.g. --CondaSvcApp.unit_prefix=svc-) overrides the configuration "
        "for this run.\n\nexit codes:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items()),
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"jupyter_condasvc {__version__}")
    parser.add_argument(
        "--host",
        metavar="HOST",
        default=None,
        help="run the command on HOST over ssh, before the command: `jupyter condasvc --host gpu2 list`. "
        "HOST is a host or ~/.ssh/config alias you reach without a password, with jupyter_condasvc "
        "installed; works for list, show, create, edit, delete, logs [-f], runs, envs, unit, export-env NAME "
        "and the actions",
    )
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)

    built: List[str] = []

    def add(name: str, help: str, *, root: bool = True, **kw: Any) -> argparse.ArgumentParser:
        if command is not None and name != command:
            unbuilt: Any = _Unbuilt()
            return unbuilt  # type: ignore[no-any-return]
        built.append(name)
        return sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            formatter_class=_formatter,
            parents=[common, rooted] if root else [common],
            **kw,
        )

    add("envs", "list the conda environments services can use")
    add("list", "list services with their live state")
    p = add("show", "show one service: command, state, resources")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--unit", action="store_true", help="print the unit file as written instead")
    p = add(
        "create",
        "register a new service (writes its unit, reloads systemd)",
        epilog="examples:\n"
        "  jupyter condasvc create train --env ml --path train.py --var API_KEY=s3cret -- --epochs 3\n"
        "  jupyter condasvc create api --env ml --enable --start -- uvicorn app:app --port 8080\n"
        "  jupyter condasvc create -f service.yaml",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="service name (or 'name:' in the spec file)")
    _spec_flags(p)
    p.add_argument("--start", action="store_true", help="start it right away")
    p = add("edit", "change a service (only the fields given); a running service keeps the old command until restarted")
    p.add_argument("name", metavar="NAME")
    _spec_flags(p, edit=True)
    p.add_argument(
        "--unset", action="append", metavar="FIELD", help="reset a field to its default (e.g. memory_max, schedule)"
    )
    p.add_argument("--unset-var", action="append", metavar="KEY", help="remove an environment variable")
    for action in ACTIONS:
        p = add(
            action,
            {
                "start": "start a service and wait for systemd's job",
                "stop": "stop a service",
                "restart": "restart a service",
                "enable": "start the service at login (or its timer)",
                "disable": "do not start the service at login",
                "reset-failed": "clear a failed state (and the start limit)",
                "run-now": "run a scheduled service once, now",
                "pause": "stop a service's schedule from firing (its timer); a run in progress goes on",
                "resume": "arm a paused schedule again",
                "reset-and-start": "recover from a start limit: reset-failed, then start",
            }[action],
        )
        p.add_argument("name", metavar="NAME")
        p.set_defaults(action=action)
    p = add("delete", "stop, disable and remove a service and its files")
    p.add_argument("name", metavar="NAME")
    p = add("logs", "print a service's journal; -f follows it until Ctrl-C")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="the newest N entries (default 100; with --since, all)")
    p.add_argument(
        "-p", "--priority", metavar="PRIO", help="err, warning, ... (that level and worse) or a range crit..warning"
    )
    p.add_argument("--since", metavar="TIME", help="ISO 8601, epoch seconds, or -30s/-5m/-2h/-1d")
    p.add_argument("--until", metavar="TIME")
    p.add_argument(
        "--grep", metavar="TEXT", help="only entries containing TEXT (case-insensitive unless it has capitals)"
    )
    p.add_argument("--boot", metavar="BOOT", help="this, all (default) or a boot id")
    p = add(
        "runs", "list a service's runs (newest first): trigger, start, duration, result; --log RUN prints one run's log"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="the newest N runs (default 20)")
    p.add_argument("--log", metavar="RUN", help="print the log of this run (its id from the list)")
    p = add(
        "unit",
        "print the unit file a spec would produce (writes nothing; needs no systemd)",
        epilog="example:\n  jupyter condasvc unit api --env ml -- uvicorn app:app",
    )
    p.add_argument("name", metavar="NAME", nargs="?")
    _spec_flags(p)
    p = add("export-env", "print the environment.yml of a service's environment (or of --env ENV)")
    p.add_argument("name", metavar="NAME", nargs="?")
    p.add_argument("--env", help="a conda environment instead of a service's")
    p.add_argument("--registered", action="store_true", help="the file stored when the service was registered")
    p.add_argument("--drift", action="store_true", help="what changed in the environment since registration")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    add("doctor", "check this host for everything services need; each problem with its fix (exit 1 if any)")
    add(
        "hosts",
        "this host and each of CondaSvcApp.hosts: reachable, systemd, linger, journal, doctor's problems (exit 5 if "
        "one cannot be reached)",
    )
    p = add(
        "linger",
        "turn linger on or off for yourself (loginctl enable-linger): services start at boot, survive logout",
        root=False,
    )
    p.add_argument(
        "state",
        choices=("on", "off"),
        help="on: services that start at login also start at boot and keep running after logout; off: undo",
    )
    p = add(
        "jupyter-service",
        "run JupyterLab (or Jupyter Server) from an environment as a user service; run again to update",
        root=False,
    )
    p.add_argument(
        "--env",
        help="environment with jupyterlab or jupyter_server (default: the active one, $CONDA_DEFAULT_ENV, else base)",
    )
    p.add_argument("--name", default="jupyterlab", help="service name (default: jupyterlab)")
    p.add_argument(
        "--port", type=_port, default=8888, help="port (default 8888; taken means failed, no silent fallback)"
    )
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--root",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="Jupyter's root directory (default: the current directory)",
    )
    p.add_argument("--config", metavar="FILE", help="a Jupyter config file for the server (--config=FILE)")
    p.add_argument(
        "--enable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start at login / at boot with linger (default: yes)",
    )
    p.add_argument(
        "--start", action=argparse.BooleanOptionalAction, default=True, help="start (or restart) it now (default: yes)"
    )
    p.add_argument(
        "--wait", type=float, default=60.0, metavar="SEC", help="how long to wait for the server to answer (default 60)"
    )
    if command is not None and not built:  # not a command: the whole parser, whose error lists them
        return build_parser()
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port
