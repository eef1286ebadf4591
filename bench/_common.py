"""What the benchmarks share: the package snapshot, stopping a server's process group, a temporary dir that
Ctrl-C, SIGTERM and SIGHUP clean up.

Imported as ``_common`` (the benchmarks run with this folder first on ``sys.path``; load_bench copies it next to
the stream_bench probe it loads into its server)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def git(*args: str) -> bytes:
    """``git ARGS`` in the checkout (whoever owns it), its standard output."""
    return subprocess.run(
        ["git", "-c", f"safe.directory={REPO}", "-C", str(REPO), *args], capture_output=True, check=True, timeout=60
    ).stdout


def snapshot(dest: Path, rev: Optional[str], extra: Sequence[str] = ()) -> Path:
    """Copy jupyter_condasvc of the working tree (or of git revision REV) into DEST, with the repository files
    EXTRA (e.g. ``tests/condaenv.py``) placed in DEST under their base names; nothing is imported here."""
    dest.mkdir(parents=True)
    if rev:
        with tarfile.open(fileobj=io.BytesIO(git("archive", rev, "jupyter_condasvc", *extra))) as tf:
            tf.extractall(dest)  # our own repository's archive
        for name in extra:
            (dest / name).rename(dest / Path(name).name)
    else:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "labextension", "node_modules")
        shutil.copytree(REPO / "jupyter_condasvc", dest / "jupyter_condasvc", ignore=ignore)
        for name in extra:
            shutil.copy2(REPO / name, dest / Path(name).name)
    return dest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_group(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM to PROC's process group (it runs in a session of its own), SIGKILL after GRACE seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so a bench cleans up the same way as on Ctrl-C."""

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)


def run_in_tmp(prefix: str, keep: bool, say: Callable[..., None], body: Callable[[Path], T]) -> Optional[T]:
    """BODY(tmp) in a fresh temporary dir, removed afterwards unless KEEP; None when interrupted (Ctrl-C, and
    SIGTERM/SIGHUP from here on), after BODY's own clean-up ran."""
    interrupt_on_signals()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return body(tmp)
    except KeyboardInterrupt:
        say("interrupted; cleaned up")
        return None
    finally:
        if keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def subscribe(*rules: str) -> Any:
    """A new connection to the user bus that receives the signals RULES match (D-Bus match rules)."""
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    bus = await MessageBus().connect()
    for rule in rules:
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )
    return bus
