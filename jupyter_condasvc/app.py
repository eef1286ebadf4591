"""The server extension: composition root and every setting."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING or __name__ != "jupyter_condasvc._cli_settings":
    # (the type checker sees the server extension)
    from jupyter_server.extension.application import ExtensionApp
else:
    # This file run again by the CLI (cli.load_settings), which only reads the settings and builds the
    # service layer: a plain traitlets Application as the base spares it jupyter_server's imports (~0.4 s).
    from traitlets.config import Application as ExtensionApp
from traitlets import Bool, Dict, Enum, Float, Int, List, Type, Unicode, default

from .conda import EnvironmentFinder
from .limits import Limits
from .services import Defaults, ServiceManager
from .store import ServiceStore
from .systemd import SystemdManager


async def _export_hook(manager: ServiceManager, event: str, name: str, env_prefix: Optional[str]) -> None:
    """envexport.store_export_hook, imported when a service changes (not by every CLI command: email.parser)."""
    from .envexport import store_export_hook

    await store_export_hook(manager, event, name, env_prefix)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or os.path.expanduser(fallback))


class CondaSvcApp(ExtensionApp):
    """Run notebooks, scripts and commands from conda environments as systemd user services."""

    name = "jupyter_condasvc"
    description = __doc__

    unit_dir = Unicode(
        config=True,
        help="Where unit files are written. Must be a directory the user manager reads: ~/.config/systemd/user by "
        "default.",
    )

    @default("unit_dir")
    def _unit_dir_default(self) -> str:
        return str(_xdg("XDG_CONFIG_HOME", "~/.config") / "systemd" / "user")

    state_dir = Unicode(
        config=True,
        help="Where service records and their 0600 environment files are kept: ~/.local/share/jupyter_condasvc by "
        "default.",
    )

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return str(_xdg("XDG_DATA_HOME", "~/.local/share") / "jupyter_condasvc")

    unit_prefix = Unicode(
        "",
        config=True,
        help="Prefix of every unit name this extension writes (e.g. 'condasvc-'); empty keeps names as the user chose "
        "them.",
    )
    default_restart = Enum(
        ["no", "on-failure", "always"], "on-failure", config=True, help="Restart= of a service whose spec does not say."
    )
    default_notebook_restart = Enum(
        ["no", "on-failure", "always"],
        "no",
        config=True,
        help="Restart= of a notebook service whose spec does not say: 'no', so a notebook runs once per start "
        "(a failing notebook is not re-run, and each run keeps its own executed copy).",
    )
    stderr_priority = Enum(
        ["", "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"],
        "err",
        config=True,
        help="Journal priority of the stderr of script and command services (through `systemd-cat --stderr-priority`, "
        "which keeps the PID and Type=exec), so an errors-only view shows tracebacks. Empty: stderr at info, like "
        "stdout.",
    )
    runs_keep = Int(
        50, config=True, help="Executed notebook copies kept per service (one per run, never overwritten); 0 keeps all."
    )
    runs_max_age_days = Float(
        30.0,
        config=True,
        help="Executed notebook copies older than this many days are removed at the next run; 0 keeps them.",
    )
    default_restart_sec = Float(5.0, config=True, help="RestartSec= (seconds) of a service whose spec does not say.")
    default_start_limit_burst = Int(
        5, config=True, help="StartLimitBurst= against restart storms: at most this many starts per interval."
    )
    default_start_limit_interval_sec = Float(
        60.0, config=True, help="StartLimitIntervalSec= (seconds), the window of default_start_limit_burst."
    )
    notebook_start_timeout_sec = Float(
        180.0,
        config=True,
        help="TimeoutStartSec= of notebook services: how long the runner may take to start its kernel and report "
        "READY.",
    )
    timeout_stop_sec = Float(
        30.0, config=True, help="TimeoutStopSec=: how long systemd waits for a service to stop before killing it."
    )
    service_base_path = Unicode(
        "/usr/local/bin:/usr/bin:/bin",
        config=True,
        help="PATH of every service after the environment's bin directory (which always comes first).",
    )
    allowed_roots = List(
        Unicode(),
        config=True,
        help="Directories besides the server's root_dir where scripts, notebooks and working directories may live.",
    )
    allow_paths_outside_root = Bool(
        False,
        config=True,
        help="Allow scripts, notebooks and working directories anywhere the user can reach (not only under root_dir).",
    )
    runner_python = Unicode(
        sys.executable,
        config=True,
        help="Interpreter that runs the notebook runner (needs jupyter_condasvc and nbclient); the kernel itself runs "
        "in the service's environment.",
    )
    systemd_manager_class = Type(
        default_value=SystemdManager,
        klass=SystemdManager,
        config=True,
        help="The class that talks to the systemd user manager.",
    )
    environment_finder_class = Type(
        default_value=EnvironmentFinder,
        klass=EnvironmentFinder,
        config=True,
        help="The class that finds environments (conda, pixi, venvs, the server's own).",
    )

    follow_interval = Float(
        0.01,
        config=True,
        help="Seconds between reads of the journal while someone follows a log (journald wakes inotify readers only "
        "every 250 ms). One timer for all followers, running only while there is at least one.",
    )
    follow_budget = Float(
        0.003,
        config=True,
        help="Most seconds one journal read may hold the event loop; the rest is read on the next turn.",
    )
    follow_max_pending = Int(
        4 * 1024 * 1024,
        config=True,
        help="Bytes a log follower may have unsent before new lines are dropped for it (it is told how many).",
    )
    follow_max_followers = Int(
        64,
        config=True,
        help="Most log follow sockets this server serves at once; one more gets an error message and is closed. "
        "All of them share one journal watch (one inotify instance), but each keeps its journal files open.",
    )
    log_page_max = Int(10000, config=True, help="Most log entries one history request may ask for (n=).")
    log_max_scan = Int(
        200000,
        config=True,
        help="Most journal entries one history request reads while filtering by text before answering.",
    )
    status_coalesce = Float(
        0.0,
        config=True,
        help="Seconds to gather a service's burst of systemd signals into one status push; 0: the signals read in one "
        "loop iteration.",
    )
    status_sample_interval = Float(
        2.0,
        config=True,
        help="Seconds between memory/CPU samples (systemd never signals them), taken only while a status client is "
        "connected; 0 disables.",
    )

    max_body_bytes = Int(
        Limits.max_body_bytes,
        config=True,
        help="Most bytes one request body may have; a larger one is refused with 413 (field 'body').",
    )
    max_argument_bytes = Int(
        Limits.max_argument_bytes,
        config=True,
        help="Most UTF-8 bytes of one argument, path or other single value of a service spec (413 naming the field). "
        "systemd refuses unit lines over 1 MiB and the kernel arguments over 128 KiB.",
    )
    max_argv_bytes = Int(
        Limits.max_argv_bytes,
        config=True,
        help="Most UTF-8 bytes of a service's argv and args together (413, field 'argv' or 'args').",
    )
    max_variables = Int(
        Limits.max_variables,
        config=True,
        help="Most environment variables one service may set (413, field 'environment').",
    )
    max_environment_bytes = Int(
        Limits.max_environment_bytes,
        config=True,
        help="Most UTF-8 bytes of one service's environment variables, names and values together (413, field "
        "'environment').",
    )

    log_cache_entries = Int(
        10000,
        config=True,
        help="Journal entries kept decoded and JSON-encoded for history requests (entries never change; least "
        "recently used go first). About 1 KiB each; 0 disables.",
    )
    log_page_cache_entries = Int(
        10000,
        config=True,
        help="Entries of the history pages kept whole and answered again while the journal provably has nothing new "
        "for them (the same query; the page's oldest entry still there, and no newer entry for the unit where one "
        "could join it); a page of the newest entries whose unit logged since grows by the new ones instead of being "
        "read again. About 0.3 KiB each besides the texts shared with the entry cache; least recently used pages go "
        "first. 0 disables.",
    )
    host_report_max_age = Float(
        5.0,
        config=True,
        help="Seconds the host report (GET host: linger, journal, cgroup delegation, none of which systemd signals) is "
        "reused before it is computed again; requests meanwhile share one computation, and get the last report while "
        "it is less than twice this old. A change of linger (seen by inotify on its folder, or made through the API) "
        "forgets it at once. 0: computed for every request.",
    )

    # -- other hosts over SSH (issue 15; jupyter_condasvc.remote) --
    hosts = List(
        Unicode(),
        config=True,
        help="Other hosts whose services this server shows and manages, each a host name or ~/.ssh/config alias the "
        "user reaches with `ssh` without a password (keys or agent; BatchMode). Each needs jupyter_condasvc installed. "
        "The CLI's --host reaches any host, listed or not.",
    )
    hosts_from_ssh_config = Bool(
        False,
        config=True,
        help="Also manage every host named by a `Host` line of ~/.ssh/config (concrete aliases only: patterns with * "
        "or ?, negations and Match blocks are left out; Include is followed as ssh does), after those in hosts. The "
        "file is read again when it (or a file it includes) changes.",
    )
    host_bridge_command = Unicode(
        "python3 -m jupyter_condasvc.bridge",
        config=True,
        help="The command ssh runs on a host to start the bridge (the service layer there, spoken over stdin/stdout).",
    )
    host_bridge_commands = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="Per-host bridge commands, e.g. {'gpu2': '/opt/conda/bin/python -m jupyter_condasvc.bridge'}; other hosts "
        "use host_bridge_command.",
    )
    host_ssh_args = List(
        Unicode(),
        config=True,
        help="Extra arguments for every ssh to another host, before the host name (e.g. ['-F', '/path/ssh_config']). "
        "BatchMode=yes, keep-alives and a ControlMaster socket under $XDG_RUNTIME_DIR/condasvc-ssh are always set.",
    )
    host_connect_timeout = Float(
        15.0,
        config=True,
        help="Seconds to wait for a host's bridge to answer when connecting; a host that fails is retried with "
        "backoff (0.5 s doubling up to 30 s) and meanwhile answers at once with its last error.",
    )

    hosts_report_max_age = Float(
        60.0,
        config=True,
        help="Seconds a host's report in GET hosts (its reachability, systemd, linger, journal and doctor checks) is "
        "reused before that host is checked again; ?refresh=1 checks every host now. A host whose last check failed "
        "is checked again at each request (its reconnect backoff decides whether it is dialled).",
    )
    hosts_report_wait = Float(
        5.0,
        config=True,
        help="Seconds GET hosts waits for the checks it started; a host not done by then is answered from its last "
        "state (checking: true), and its check goes on for the next request.",
    )

    def build_services(self, root_dir: str) -> ServiceManager:
        """The service layer from these settings: the server extension and the CLI both build it here.

        ``root_dir`` is where relative paths resolve and what they must stay
        inside (the server's root_dir; the CLI's working directory or --root).
        """
        systemd = self.systemd_manager_class(parent=self)
        finder = self.environment_finder_class(parent=self)
        finder.project_dir = os.path.realpath(os.path.expanduser(root_dir))
        store = ServiceStore(Path(self.unit_dir), Path(self.state_dir), self.unit_prefix)
        defaults = Defaults(
            restart=self.default_restart,
            notebook_restart=self.default_notebook_restart,
            stderr_priority=self.stderr_priority,
            runs_keep=self.runs_keep,
            runs_max_age_days=self.runs_max_age_days,
            restart_sec=self.default_restart_sec,
            start_limit_burst=self.default_start_limit_burst,
            start_limit_interval_sec=self.default_start_limit_interval_sec,
            timeout_stop_sec=self.timeout_stop_sec,
            base_path=self.service_base_path,
            root_dir=os.path.realpath(os.path.expanduser(root_dir)),
            allowed_roots=tuple(self.allowed_roots),
            allow_paths_outside_root=self.allow_paths_outside_root,
            runner_python=self.runner_python,
            notebook_start_timeout_sec=self.notebook_start_timeout_sec,
            limits=Limits(
                max_body_bytes=self.max_body_bytes,
                max_argument_bytes=self.max_argument_bytes,
                max_argv_bytes=self.max_argv_bytes,
                max_variables=self.max_variables,
                max_environment_bytes=self.max_environment_bytes,
            ),
        )
        if store.state_dir.exists():
            try:  # a state dir made by an older version (0755) showed every service's name to other users
                store.private_state_dir()
            except OSError:
                pass  # reported as 507 at the first write
        services = ServiceManager(systemd, finder, store, defaults, self.log)
        services.hooks.append(_export_hook)
        return services

    def initialize_settings(self) -> None:
        assert self.serverapp is not None  # linked before this runs (jupyter_server's _prepare_settings asserts it too)
        self.services = self.build_services(self.serverapp.root_dir)
        systemd, finder = self.services.systemd, self.services.finder
        self.systemd = systemd
        self.finder = finder
        self.settings.update(condasvc_services=self.services, condasvc_systemd=systemd, condasvc_finder=finder)
        # here, not at the top: the CLI runs this file for its settings and needs neither hub (nor the journal)
        from .journal import ENTRY_CACHE, PAGE_CACHE, FollowHub
        from .status import StatusHub
        from .views import HostReportCache, ServiceViews

        ENTRY_CACHE.max_entries = self.log_cache_entries
        PAGE_CACHE.max_entries = self.log_page_cache_entries
        self.settings.update(
            condasvc_views=ServiceViews(self.services), condasvc_host=HostReportCache(systemd, self.host_report_max_age)
        )
        self.follow_hub = FollowHub(
            interval=self.follow_interval,
            budget=self.follow_budget,
            max_pending=self.follow_max_pending,
            max_followers=self.follow_max_followers,
            log=self.log,
        )
        self.status_hub = StatusHub(
            self.services,
            systemd,
            coalesce=self.status_coalesce,
            sample_interval=self.status_sample_interval,
            log=self.log,
        )
        self.settings.update(condasvc_follow=self.follow_hub, condasvc_status=self.status_hub)
        self._init_hosts()

    def _init_hosts(self) -> None:
        """GET hosts: this host's report from the GET host cache plus the doctor, the others over ssh."""
        import json

        from .doctor import run_doctor
        from .hosts import HostsReport
        from .remote import RemoteHosts

        host_cache, services = self.settings["condasvc_host"], self.services

        async def local() -> dict:
            return {"host": json.loads(await host_cache.get_json()), "doctor": await run_doctor(services)}

        self.remote_hosts = RemoteHosts(self)
        self.hosts_report = HostsReport(
            local, self.remote_hosts, max_age=self.hosts_report_max_age, wait=self.hosts_report_wait
        )
        self.settings.update(condasvc_hosts=self.hosts_report)

        from .fleet import Fleet, FleetEvents, LocalTarget

        local_target = LocalTarget(self.services, self.settings["condasvc_views"], self.finder)
        self.fleet = Fleet(self.remote_hosts, local_target)
        self.fleet_events = FleetEvents(self.status_hub, self.fleet)
        self.settings.update(condasvc_fleet=self.fleet, condasvc_events=self.fleet_events)

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        self.settings["condasvc_views"].close()
        self.settings["condasvc_host"].close()
        self.follow_hub.close()
        self.status_hub.close()
        self.hosts_report.close()
        await self.fleet.close()
        await self.remote_hosts.close()
        await self.systemd.close()
