"""Test set-up: pytest-jupyter's server, plus the real systemd user manager.

Tests that touch systemd talk to the *real* user manager of the user running
the tests (booted by ``scripts/test`` where the host has none), through the
real user D-Bus, with real journald.  Such tests carry the ``systemd`` marker
(set here from the fixtures they use, or by hand with ``pytestmark``); if any
selected test has it and the manager is not reachable, the run fails loudly.
The rest (spec, unit rendering, parsing, redaction, ...) need none of it:
``python -m pytest -m "not systemd"`` runs them anywhere, and
``-m "not systemd and not slow"`` (no real kernels or probers) in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from condaenv import CONDA_VARS, make_conda_env, make_conda_root

# Shared helpers live in helpers.py; these names are also re-exported here for modules that still write
# `from conftest import ...` (new code imports from helpers).
from helpers import (  # noqa: F401
    PREFIX,
    REAL_HOME,
    SYSTEMCTL_ENV,
    UNIT_DIR,
    create,
    journal,
    systemctl,
    wait_for,
)
from openapi_contract import check_response

pytest_plugins = ("pytest_jupyter.jupyter_server",)

# Property tests: a quick profile for every run, a thorough one on demand
# (HYPOTHESIS_PROFILE=thorough scripts/test tests/test_roundtrip_property.py).
settings.register_profile("default", max_examples=25, deadline=None, database=None)
settings.register_profile("thorough", max_examples=400, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "default")

#: Fixtures that start the Jupyter server with this extension against the real user manager: a test that uses
#: one (itself or through another fixture) is marked ``systemd``, unless it is marked ``no_user_manager``.
MANAGER_FIXTURES = frozenset({"jp_serverapp", "jp_fetch", "jp_ws_fetch", "api"})
#: Fixtures that start real kernels or prober processes and wait on them (seconds each): their tests are marked
#: ``slow``, so the quick loop ``-m "not systemd and not slow"`` leaves them out.
SLOW_FIXTURES = frozenset({"env_python", "probers"})
#: Set once the selected tests include one that needs the user manager (checked at the end of collection).
_needs_manager = False


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so `-m "not systemd"` sees these marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if SLOW_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("no_user_manager") or item.get_closest_marker("systemd"):
            continue
        if MANAGER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.systemd)


def pytest_collection_finish(session):
    """Fail the run loudly when a selected test needs the user manager and none answers; otherwise let it be."""
    global _needs_manager
    _needs_manager = any(item.get_closest_marker("systemd") for item in session.items)
    if not _needs_manager or session.config.option.collectonly:
        return
    try:
        state = systemctl("is-system-running")
        answer = state.stdout.strip() or state.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        answer = str(exc)
    if answer not in ("running", "degraded", "starting"):
        pytest.exit(
            "No reachable systemd user manager for this user "
            f"(systemctl --user is-system-running: {answer!r}). "
            "Run the suite through scripts/test, which boots one where the host has none, "
            'or run only the tests that need none: python -m pytest -m "not systemd".',
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
    if _needs_manager:
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
def home(tmp_path, monkeypatch) -> Path:
    """A fresh HOME and no conda or venv variables from the machine running the tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in CONDA_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


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


@pytest.fixture
def root(jp_root_dir) -> Path:
    return Path(jp_root_dir)
