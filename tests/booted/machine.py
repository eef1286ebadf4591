"""The booted container of ``scripts/booted-test``, driven from the host.

No machined runs on the host, so commands enter the container's namespaces
with ``nsenter`` (as the note on booted containers does).  ``as_user`` runs a
command as the lingering user against that user's own manager and bus; the
environment is cleared, so nothing of the host's leaks in.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

CGROUP = Path("/sys/fs/cgroup")


class Machine:
    def __init__(self) -> None:
        env = os.environ
        self.name = env["CONDASVC_BOOTED_MACHINE"]
        self.boot_script = env["CONDASVC_BOOTED_BOOT"]
        self.console = env["CONDASVC_BOOTED_CONSOLE"]
        self.user = env["CONDASVC_BOOTED_USER"]
        self.uid = int(env["CONDASVC_BOOTED_UID"])
        self.env_prefix = env["CONDASVC_BOOTED_ENV"]
        self.figures_path = Path(env["CONDASVC_BOOTED_FIGURES"])
        self.home = f"/home/{self.user}"

    # -- life cycle ----------------------------------------------------------------
    def init_pid(self) -> Optional[int]:
        try:
            text = (CGROUP / "systemd/machine.slice" / self.name / "payload/init.scope/cgroup.procs").read_text()
        except OSError:
            return None
        first = text.split()
        return int(first[0]) if first else None

    def running(self) -> bool:
        base = CGROUP / "systemd/machine.slice" / self.name
        return any(p.read_text().strip() for p in base.rglob("cgroup.procs")) if base.is_dir() else False

    def boot(self) -> float:
        """Start the boot loop in the background; the host's CLOCK_MONOTONIC when it was started."""
        assert not self.running(), "already running"
        log = open(self.console, "ab")
        started = time.monotonic()
        subprocess.Popen(
            [self.boot_script, self.name], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        return started

    def wait_booted(self, timeout: float = 120.0, not_pid: Optional[int] = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.init_pid()
            if pid and pid != not_pid:
                r = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=timeout)
                if r.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not finish booting in {timeout:g} s; console: {self.console}")

    def reboot(self) -> float:
        """``systemctl reboot`` inside; returns when the request was made (host monotonic clock)."""
        old = self.init_pid()
        started = time.monotonic()
        self.run(["systemctl", "reboot"], check=False)
        self.wait_booted(not_pid=old)
        return started

    def poweroff(self, timeout: float = 60.0) -> None:
        self.run(["systemctl", "poweroff"], check=False)
        deadline = time.monotonic() + timeout
        while self.running():
            assert time.monotonic() < deadline, f"{self.name} still running {timeout:g} s after poweroff"
            time.sleep(0.1)

    # -- commands --------------------------------------------------------------------
    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 120.0, input: Optional[str] = None
    ) -> subprocess.CompletedProcess:
        pid = self.init_pid()
        assert pid, f"{self.name} is not running"
        full = ["nsenter", "-t", str(pid), "-a", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", *argv]
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def user_env(self) -> list[str]:
        return [
            f"HOME={self.home}",
            f"USER={self.user}",
            f"LOGNAME={self.user}",
            f"XDG_RUNTIME_DIR=/run/user/{self.uid}",
            f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{self.uid}/bus",
            f"PATH={self.env_prefix}/bin:/usr/bin:/bin",
        ]

    def as_user(self, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess:
        """As the user (no login session: what a lingering user's manager sees), from their home."""
        script = f"cd {shlex.quote(self.home)} && exec " + shlex.join(argv)
        return self.run(
            [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--init-groups",
                "env",
                "-i",
                *self.user_env(),
                "/bin/sh",
                "-c",
                script,
            ],
            **kw,
        )

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        return self.as_user([f"{self.env_prefix}/bin/jupyter-condasvc", *args], **kw)

    def cli_json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.cli(*args, "--json", **kw).stdout)

    def user_unit(self, unit: str, *props: str) -> dict[str, str]:
        r = self.as_user(["systemctl", "--user", "show", unit, *(f"--property={p}" for p in props)])
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def write_file(self, path: str, text: str, mode: str = "644") -> None:
        self.as_user(
            [
                "sh",
                "-c",
                f'mkdir -p "$(dirname {shlex.quote(path)})" && cat > {shlex.quote(path)} '
                f"&& chmod {mode} {shlex.quote(path)}",
            ],
            input=text,
        )

    def sessions(self) -> list[str]:
        r = self.run(["loginctl", "list-sessions", "--no-legend"])
        return [line for line in r.stdout.splitlines() if line.strip()]

    def memory_cgroup(self, unit: str) -> Path:
        """The v1 memory cgroup of a user unit, as the host sees it."""
        rel = f"user.slice/user-{self.uid}.slice/user@{self.uid}.service/app.slice/{unit}"
        for cand in (
            CGROUP / "memory/machine.slice" / self.name / rel,
            CGROUP / "memory/machine.slice" / self.name / "payload" / rel,
        ):
            if cand.is_dir():
                return cand
        return CGROUP / "memory/machine.slice" / self.name / rel

    # -- figures for the closing note ------------------------------------------------------
    def record(self, key: str, value: Any) -> None:
        data = json.loads(self.figures_path.read_text()) if self.figures_path.exists() else {}
        data[key] = value
        self.figures_path.write_text(json.dumps(data, indent=2) + "\n")
