"""Linger for oneself, limits as systemd applies them, and why a process ended.

The booted proofs (logind present, controllers delegated, a real OOM kill) are
in tests/booted/, run by scripts/booted-test; here: what the product says on a
host without logind, and the pure parts.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from helpers import create, wait_for
from jupyter_condasvc import host
from jupyter_condasvc.errors import ManagerUnavailable
from jupyter_condasvc.exitreason import exit_reason
from jupyter_condasvc.linger import set_linger


@pytest.mark.parametrize(
    "props, memory_max, expected",
    [
        (
            {"Result": "oom-kill", "ExecMainCode": 2, "ExecMainStatus": 9},
            "50M",
            "killed for memory: the kernel's OOM killer",
        ),
        (
            {"Result": "signal", "ExecMainCode": 2, "ExecMainStatus": 9},
            "50M",
            "killed for memory (most likely): SIGKILL while memory_max 50M",
        ),
        ({"Result": "signal", "ExecMainCode": 2, "ExecMainStatus": 9}, None, "killed by SIGKILL."),
        ({"Result": "signal", "ExecMainCode": 2, "ExecMainStatus": int(signal.SIGTERM)}, "50M", "killed by SIGTERM."),
        (
            {"Result": "core-dump", "ExecMainCode": 3, "ExecMainStatus": int(signal.SIGSEGV)},
            None,
            "crashed: SIGSEGV, core dumped.",
        ),
        ({"Result": "exit-code", "ExecMainCode": 1, "ExecMainStatus": 3}, None, "exited with status 3."),
        ({"Result": "success", "ExecMainCode": 1, "ExecMainStatus": 0}, "50M", None),
        ({"Result": "success", "ExecMainCode": 0, "ExecMainStatus": 0}, "50M", None),  # running: no exit yet
    ],
)
def test_exit_reason(props, memory_max, expected):
    got = exit_reason(props, memory_max)
    assert (got is None) if expected is None else got.startswith(expected)


def test_sigkill_is_not_blamed_on_a_limit_the_host_does_not_enforce():
    props = {"Result": "signal", "ExecMainCode": 2, "ExecMainStatus": 9}
    assert exit_reason(props, "50M", memory_enforced=True).startswith("killed for memory (most likely)")
    assert exit_reason(props, "50M", memory_enforced=False).startswith("killed by SIGKILL (not for memory")
    assert exit_reason({**props, "Result": "oom-kill"}, "50M", memory_enforced=False).startswith("killed for memory:")


async def test_a_kill_9_here_is_not_called_a_memory_kill(api, root):
    """This host enforces no memory limit (the hand-started user manager has no memory controller)."""
    await create(
        api, root, "kill9", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", memory_max="50M", restart="no"
    )
    try:
        code, _ = await api("POST", "services", "kill9", "start")

        async def failed():
            code, svc = await api("GET", "services", "kill9")
            return svc if svc["status"]["active_state"] == "failed" else None

        got = await wait_for(failed, timeout=20)
        status = got["status"]
        assert status["result"] == "signal" and status["exec_main_status"] == 9
        assert status["exit_reason"].startswith("killed by SIGKILL (not for memory")
    finally:
        await api("DELETE", "services", "kill9")


def test_cpu_cgroup_read_from_proc(tmp_path):
    group = "/user.slice/user-4242.slice/user@4242.service/init.scope"
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_text(
        f"12:memory:{group}\n4:cpu,cpuacct:{group}\n1:name=systemd:{group}\n0::{group}\n"
    )
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "cgroup").write_text(f"4:cpu,cpuacct:/user.slice\n1:name=systemd:{group}\n0::{group}\n")
    assert host._in_cpu_cgroup(7, group, tmp_path) is True
    assert host._in_cpu_cgroup(8, group, tmp_path) is False  # the manager never got its own cpu cgroup
    assert host._in_cpu_cgroup(9, group, tmp_path) is False  # gone


def test_linger_without_logind_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-system-bus")
    with pytest.raises(ManagerUnavailable) as err:
        asyncio.run(set_linger(True))
    assert "systemd-logind" in err.value.message and "not reachable" in err.value.message


async def test_linger_endpoint(api, monkeypatch, tmp_path):
    for body in ({}, {"enabled": "yes"}, {"enabled": True, "user": "root"}, []):
        code, data = await api("POST", "host", "linger", body=body)
        assert code == 400 and data["field"] == "enabled", data
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-system-bus")
    code, data = await api("POST", "host", "linger", body={"enabled": True})
    assert code == 503 and "systemd-logind" in data["message"]
