"""What several test modules share: the real ``systemctl --user`` and journal, this run's unit prefix, polling,
the status socket and a free port.  Fixtures stay in conftest.py; test modules import these names from here."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable, Optional

REAL_HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)
UNIT_DIR = REAL_HOME / ".config" / "systemd" / "user"
#: Unique per run, so a run never meets units of another and cleans only its own.
PREFIX = f"ct{uuid.uuid4().hex[:6]}-"
SYSTEMCTL_ENV = {
    k: v for k, v in os.environ.items() if k in ("PATH", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "LANG")
}
SYSTEMCTL_ENV.setdefault("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
SYSTEMCTL_ENV["HOME"] = str(REAL_HOME)


#: The variables systemd itself sets in every service's environment; a user variable of that name is overridden.
SYSTEMD_SET_ENV = frozenset(
    {
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "XDG_RUNTIME_DIR",
        "MANAGERPID",
        "SYSTEMD_EXEC_PID",
        "LANG",
        "LANGUAGE",
        "DBUS_SESSION_BUS_ADDRESS",
        "NOTIFY_SOCKET",
    }
)
#: The doctor's checks, in the order ``GET doctor`` lists them (docs/troubleshooting.md covers each).
DOCTOR_CHECKS = (
    "manager",
    "journal",
    "linger",
    "cgroups",
    "conda",
    "ipykernel",
    "open-browser",
    "workdirs",
    "service-envs",
    "runner",
    "failed",
)


def systemctl(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The real ``systemctl --user``, as a user would type it."""
    return subprocess.run(
        ["systemctl", "--user", *args], capture_output=True, text=True, env=SYSTEMCTL_ENV, check=check, timeout=60
    )


def journal(unit: str) -> str:
    """The messages ``journalctl --user -u UNIT`` shows, one a line."""
    return subprocess.run(
        ["journalctl", "--user", "-u", unit, "-o", "cat", "--no-pager"],
        capture_output=True,
        text=True,
        errors="replace",
        env=SYSTEMCTL_ENV,
        timeout=60,
    ).stdout


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(predicate: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns a truthy value (tests only)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")
        await asyncio.sleep(interval)


async def create(api: Any, root: Path, name: str, text: str, **spec: Any) -> Any:
    """Write ``<name>.py`` into the server root and register it as a script service in env ``ml``."""
    (root / f"{name}.py").write_text(text)
    body = {"name": name, "kind": "script", "env": "ml", "path": f"{name}.py", **spec}
    code, svc = await api("POST", "services", body=body)
    assert code == 201, svc
    return svc


async def preview_script(api: Any, path: str, **spec: Any) -> Any:
    """``POST preview`` of a draft script service running PATH in env ``ml``: (status code, answer)."""
    return await api("POST", "preview", body={"name": "draft", "kind": "script", "env": "ml", "path": path, **spec})


# -- a service's status through the API, for wait_for ------------------------------------------------


async def status_of(api: Any, name: str) -> Any:
    """``GET services/NAME``'s status."""
    code, svc = await api("GET", "services", name)
    assert code == 200, svc
    return svc["status"]


async def status_in(api: Any, name: str, *states: str) -> Optional[Any]:
    """The status of NAME when its active_state is one of STATES, else None (so ``wait_for`` polls on)."""
    status = await status_of(api, name)
    return status if status["active_state"] in states else None


async def stopped(api: Any, name: str) -> Optional[Any]:
    """The status of NAME once it has stopped, cleanly or not."""
    return await status_in(api, name, "inactive", "failed")


# -- WebSockets --------------------------------------------------------------------------------------


class Stream:
    """The JSON messages of a WebSocket, read with deadlines; ``messages`` keeps every one read."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[Any] = []

    async def next(self, timeout: float = 10.0) -> Any:
        text = await asyncio.wait_for(self.ws.read_message(), timeout)
        assert text is not None, "the server closed the socket"
        msg = json.loads(text)
        self.messages.append(msg)
        return msg

    async def until(self, predicate: Callable[[Any], Any], timeout: float = 20.0) -> Any:
        """The first message PREDICATE accepts; AssertionError naming what came instead after TIMEOUT s."""
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while True:
            try:
                msg = await self.next(max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"no matching message within {timeout} s; saw {[m.get('type') for m in seen]}"
                ) from None
            seen.append(msg)
            if predicate(msg):
                return msg

    def close(self) -> None:
        self.ws.close()


async def events(jp_ws_fetch: Any) -> tuple[Stream, Any]:
    """The status socket, and its first message (the snapshot)."""
    stream = Stream(await jp_ws_fetch("condasvc", "api", "events"))
    snap = await stream.next()
    assert snap["type"] == "snapshot", snap
    return stream, snap


def pushed(name: str, active: str) -> Callable[[Any], bool]:
    """A predicate for ``Stream.until``: the full service message of NAME in ACTIVE state."""

    def match(msg: Any) -> bool:
        return bool(
            msg["type"] == "service"
            and msg["service"]["name"] == name
            and msg["service"]["status"]["active_state"] == active
        )

    return match


def unit_plan(**kw: Any) -> Any:
    """A ``UnitPlan`` of a plain script service; KW overrides any field."""
    from jupyter_condasvc.units import UnitPlan

    base: dict[str, Any] = dict(
        name="train",
        unit_name="train.service",
        description="",
        exec_argv=["/envs/ml/bin/python", "-u", "/home/u/train.py"],
        working_directory="/home/u",
        env_prefix="/envs/ml",
        env_name="ml",
        environment_file="/home/u/.local/share/jupyter_condasvc/train.env",
        restart="on-failure",
        restart_sec=5,
        start_limit_burst=5,
        start_limit_interval_sec=60,
    )
    return UnitPlan(**{**base, **kw})


def write_failing_notebook(path: Path, before: str, after: str) -> None:
    """A notebook at PATH whose cells are BEFORE, a ZeroDivisionError, then AFTER (never run)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell(before), new_code_cell("1 / 0"), new_code_cell(after)]
    nbformat.write(new_notebook(cells=cells), str(path))
