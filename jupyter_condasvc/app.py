"""The server extension: composition root and every setting."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Int, List, Type, Unicode, default

from .conda import EnvironmentFinder
from .services import Defaults, ServiceManager
from .store import ServiceStore
from .systemd import SystemdManager


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or os.path.expanduser(fallback))


class CondaSvcApp(ExtensionApp):
    """Run notebooks, scripts and commands from conda environments as systemd user services."""

    name = "jupyter_condasvc"
    description = __doc__

    unit_dir = Unicode(
        config=True,
        help="Where unit files are written. Must be a directory the user manager reads: ~/.config/systemd/user by default.",
    )

    @default("unit_dir")
    def _unit_dir_default(self) -> str:
        return str(_xdg("XDG_CONFIG_HOME", "~/.config") / "systemd" / "user")

    state_dir = Unicode(
        config=True,
        help="Where service records and their 0600 environment files are kept: ~/.local/share/jupyter_condasvc by default.",
    )

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return str(_xdg("XDG_DATA_HOME", "~/.local/share") / "jupyter_condasvc")

    unit_prefix = Unicode(
        "",
        config=True,
        help="Prefix of every unit name this extension writes (e.g. 'condasvc-'); empty keeps names as the user chose them.",
    )
    default_restart = Enum(
        ["no", "on-failure", "always"], "on-failure", config=True, help="Restart= of a service whose spec does not say."
    )
    default_restart_sec = Float(5.0, config=True, help="RestartSec= (seconds) of a service whose spec does not say.")
    default_start_limit_burst = Int(
        5, config=True, help="StartLimitBurst= against restart storms: at most this many starts per interval."
    )
    default_start_limit_interval_sec = Float(
        60.0, config=True, help="StartLimitIntervalSec= (seconds), the window of default_start_limit_burst."
    )
    timeout_stop_sec = Float(30.0, config=True, help="TimeoutStopSec=: how long systemd waits for a service to stop before killing it.")
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
        False, config=True, help="Allow scripts, notebooks and working directories anywhere the user can reach (not only under root_dir)."
    )
    runner_python = Unicode(
        sys.executable,
        config=True,
        help="Interpreter that runs the notebook runner (needs jupyter_condasvc and nbclient); the kernel itself runs in the service's environment.",
    )
    systemd_manager_class = Type(
        default_value=SystemdManager, klass=SystemdManager, config=True, help="The class that talks to the systemd user manager."
    )
    environment_finder_class = Type(
        default_value=EnvironmentFinder, klass=EnvironmentFinder, config=True, help="The class that finds conda environments."
    )

    def initialize_settings(self) -> None:
        systemd = self.systemd_manager_class(parent=self)
        finder = self.environment_finder_class(parent=self)
        store = ServiceStore(Path(self.unit_dir), Path(self.state_dir), self.unit_prefix)
        root_dir = os.path.realpath(os.path.expanduser(self.serverapp.root_dir))
        defaults = Defaults(
            restart=self.default_restart,
            restart_sec=self.default_restart_sec,
            start_limit_burst=self.default_start_limit_burst,
            start_limit_interval_sec=self.default_start_limit_interval_sec,
            timeout_stop_sec=self.timeout_stop_sec,
            base_path=self.service_base_path,
            root_dir=root_dir,
            allowed_roots=tuple(self.allowed_roots),
            allow_paths_outside_root=self.allow_paths_outside_root,
            runner_python=self.runner_python,
        )
        self.systemd = systemd
        self.finder = finder
        self.services = ServiceManager(systemd, finder, store, defaults, self.log)
        self.settings.update(condasvc_services=self.services, condasvc_systemd=systemd, condasvc_finder=finder)

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        await self.systemd.close()
