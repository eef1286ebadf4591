"""Test set-up: pytest-jupyter's server, plus the real systemd user manager.

Tests that touch systemd talk to the *real* user manager of the user running
the tests (booted by ``scripts/test`` where the host has none), through the
real user D-Bus, with real journald.  If that manager is not reachable the
run fails loudly: no test can pass with systemd absent.
"""
from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from condaenv import make_conda_env, make_conda_root
from openapi_contract import check_response

pytest_plugins = ("pytest_jupyter.jupyter_server",)

# Property tests: a quick profile for every run, a thorough one on demand
# (HYPOTHESIS_PROFILE=thorough scripts/test tests/test_roundtrip_property.py).
settings.register_profile("default", max_examples=25, deadline=None, database=None)
settings.register_profile("thorough", max_examples=400, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "default")

REAL_HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)
UNIT_DIR = REAL_HOME / ".config" / "systemd" / "user"
#: Unique per run, so a run never meets units of another and cleans only its own.
PREFIX = f"ct{uuid.uuid4().hex[:6]}-"
SYSTEMCTL_ENV = {
    k: v for k, v in os.environ.items() if k in ("PATH", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "LANG")
}
SYSTEMCTL_ENV.setdefault("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
SYSTEMCTL_ENV["HOME"] = str(REAL_HOME)


def systemctl(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """The real ``systemctl --user``, as a user would type it."""
    return subprocess.run(
        ["systemctl", "--user", *args], capture_output=True, text=True, env=SYSTEMCTL_ENV, check=check, timeout=60
    )


def journal(unit: str) -> str:
    return subprocess.run(
        ["journalctl", "--user", "-u", unit, "-o", "cat", "--no-pager"],
        capture_output=True, text=True, errors="replace", env=SYSTEMCTL_ENV, timeout=60,
    ).stdout


def pytest_configure(config):
    config.addinivalue_line("markers", "systemd: touches the real user manager")


def pytest_sessionstart(session):
    state = systemctl("is-system-running")
    if state.stdout.strip() not in ("running", "degraded", "starting"):
        pytest.exit(
            "No reachable systemd user manager for this user "
            f"(systemctl --user is-system-running: {state.stdout.strip() or state.stderr.strip()!r}). "
            "Run the suite through scripts/test, which boots one where the host has none.",
            returncode=3,
        )


def _cleanup_units():
    units = sorted(p.name for p in UNIT_DIR.glob(f"{PREFIX}*"))
    services = [u for u in units if u.endswith((".service", ".timer", ".path"))]
    if services:
        systemctl("stop", *services)
        systemctl("disable", *services)
    for p in UNIT_DIR.glob(f"{PREFIX}*"):
        p.unlink()
    for p in UNIT_DIR.glob(f"*.wants/{PREFIX}*"):
        p.unlink()
    systemctl("daemon-reload")
    systemctl("reset-failed")


def pytest_sessionfinish(session, exitstatus):
    _cleanup_units()


@pytest.fixture(autouse=True)
def _units_die_with_their_test():
    """Whatever a test leaves in the unit folder under this run's prefix is stopped and removed when it ends,
    passed or failed: a failing test cannot leave a unit behind that makes a later test's create answer 409, so
    one failure shows up as one failure.  (No fixture wider than a test creates units under PREFIX.)"""
    yield
    if next(UNIT_DIR.glob(f"{PREFIX}*"), None) or next(UNIT_DIR.glob(f"*.wants/{PREFIX}*"), None):
        _cleanup_units()


@pytest.fixture(scope="session")
def conda_root(tmp_path_factory) -> Path:
    """A conda installation in conda's on-disk layout: base, envs/ml, envs/nb (with ipykernel)."""
    root = make_conda_root(tmp_path_factory.mktemp("conda") / "miniforge3", ["ml"])
    make_conda_env(root / "envs" / "nb", ipykernel=True)
    return root


@pytest.fixture
def state_dir(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def jp_server_config(conda_root, state_dir):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_condasvc": True},
            "allow_unauthenticated_access": False,
        },
        "CondaSvcApp": {
            "unit_dir": str(UNIT_DIR),
            "unit_prefix": PREFIX,
            "state_dir": str(state_dir),
            "default_restart_sec": 0.2,
        },
        "EnvironmentFinder": {"conda_roots": [str(conda_root)], "use_conda_executable": False},
    }


@pytest.fixture
def unit_name():
    return lambda name: f"{PREFIX}{name}.service"


@pytest.fixture
def api(jp_fetch):
    """``await api("GET", "services")`` -> (status, json) without raising on errors.

    Every answer is checked against openapi.yaml: the document is the contract.
    """

    async def call(method, *path, body=None, **params):
        kwargs = {"method": method, "raise_error": False}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PATCH", "PUT"):
            kwargs["body"] = b""
            kwargs["allow_nonstandard_methods"] = True
        if params:
            kwargs["params"] = params
        resp = await jp_fetch("condasvc", "api", *path, **kwargs)
        text = resp.body.decode() if resp.body else ""
        data = json.loads(text) if text else None
        check_response(method, "/condasvc/api/" + "/".join(path), resp.code, data)
        return resp.code, data

    return call


async def create(api, root, name, text, **spec):
    """Write ``<name>.py`` into the server root and register it as a script service in env ``ml``."""
    (root / f"{name}.py").write_text(text)
    body = {"name": name, "kind": "script", "env": "ml", "path": f"{name}.py", **spec}
    code, svc = await api("POST", "services", body=body)
    assert code == 201, svc
    return svc


async def wait_for(predicate, timeout=15.0, interval=0.05):
    """Poll an async predicate until it returns a truthy value (tests only)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")
        await asyncio.sleep(interval)


@pytest.fixture
def root(jp_root_dir) -> Path:
    return Path(jp_root_dir)
