"""What a JupyterHub single-user server (or a separate single-user environment) needs from the extension:
hints that name a command a Lab terminal can run, a doctor that knows the Hub never opens a browser, and
services that run the server's interpreter (notebook runner, health check) tied to it visibly."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from helpers import PREFIX, UNIT_DIR, preview_script
from jupyter_condasvc.app import CondaSvcApp
from jupyter_condasvc.doctor import HostPaths, _open_browser, hub_singleuser, run_doctor
from jupyter_condasvc.invocation import cli_command
from jupyter_condasvc.store import ServiceRecord

HUB_ENV = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/",
    "JUPYTERHUB_USER": "ann",
    "JUPYTERHUB_API_TOKEN": "x",
}


def _exe(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


# -- the command hints name ------------------------------------------------------------------------
def test_cli_command_is_jupyter_condasvc_when_ours_is_on_path(tmp_path):
    bin_dir = tmp_path / "env" / "bin"
    python = _exe(bin_dir / "python")
    _exe(bin_dir / "jupyter")
    _exe(bin_dir / "jupyter-condasvc")
    assert cli_command(str(bin_dir), str(python)) == "jupyter condasvc"


def test_cli_command_names_the_interpreter_when_the_env_is_not_on_path(tmp_path):
    """JupyterHub with a separate single-user env: /opt/env/bin is not on the terminal's PATH."""
    env_bin = tmp_path / "single user env" / "bin"
    python = _exe(env_bin / "python")
    _exe(env_bin / "jupyter-condasvc")
    other = tmp_path / "hub" / "bin"  # another env's jupyter and jupyter-condasvc on PATH are not ours
    _exe(other / "jupyter")
    _exe(other / "jupyter-condasvc")
    expected = f"{shlex.quote(str(python))} -m jupyter_condasvc"
    assert cli_command("/usr/bin:/bin", str(python)) == expected
    assert cli_command(str(other), str(python)) == expected
    assert cli_command(f"{env_bin}", str(python)) == expected  # jupyter-condasvc without jupyter


def test_python_dash_m_runs_the_cli():
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "jupyter_condasvc", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "doctor" in out.stdout


# -- doctor under the hub ----------------------------------------------------------------------------
def test_hub_singleuser_is_recognised_by_its_environment():
    assert hub_singleuser(HUB_ENV) == "ann"
    assert hub_singleuser({"JUPYTERHUB_USER": "ann"}) is None  # a stray variable is not a hub server
    assert hub_singleuser({}) is None


def test_open_browser_passes_on_a_headless_hub_singleuser_server():
    plain = _open_browser(HostPaths(config_paths=[], environ={"PATH": "/usr/bin"}), {})
    assert plain["ok"] is False  # headless, nothing configured: a plain server would try
    hub = _open_browser(HostPaths(config_paths=[], environ={"PATH": "/usr/bin", **HUB_ENV}), {})
    assert hub["ok"] is True and "JupyterHub single-user server (JUPYTERHUB_USER=ann)" in hub["detail"]
    # a service that runs Jupyter without --no-browser is still a problem under the hub
    risky = {
        "lab": ServiceRecord(
            spec={}, unit="x-lab.service", resolved={"exec_argv": ["/env/bin/jupyter-lab", "--port=9999"]}
        )
    }
    hub_risky = _open_browser(HostPaths(config_paths=[], environ={"PATH": "/usr/bin", **HUB_ENV}), risky)
    assert hub_risky["ok"] is False and "without --no-browser: lab." in hub_risky["detail"]
    assert "never opens a browser" in hub_risky["detail"]


# -- the server's interpreter in units ----------------------------------------------------------------
def _build(conda_root, state_dir: Path, root: Path, runner: str):
    c = Config()
    c.CondaSvcApp.unit_dir = str(UNIT_DIR)
    c.CondaSvcApp.unit_prefix = PREFIX
    c.CondaSvcApp.state_dir = str(state_dir)
    c.CondaSvcApp.runner_python = runner
    c.EnvironmentFinder.conda_roots = [str(conda_root)]
    c.EnvironmentFinder.use_conda_executable = False
    return CondaSvcApp(config=c).build_services(str(root))


def _notebook(path: Path) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell("print(1)"))
    nbformat.write(nb, str(path))


@pytest.mark.systemd
async def test_doctor_finds_a_runner_interpreter_that_was_moved_or_lost_jupyter_condasvc(tmp_path, conda_root):
    root = tmp_path / "root"
    root.mkdir()
    _notebook(root / "nb.ipynb")
    (root / "web.py").write_text("print(1)\n")
    runner = _exe(tmp_path / "server-env" / "bin" / "python", f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    services = _build(conda_root, tmp_path / "state", root, str(runner))
    paths = HostPaths(config_paths=[], environ={"PATH": "/usr/bin:/bin"}, cgroup_controllers=[])
    try:
        report = await run_doctor(services, paths)
        check = {c["id"]: c for c in report["checks"]}["runner"]
        assert check["ok"] is True and "No notebook service" in check["detail"]

        await services.create({"name": "hub-nb", "kind": "notebook", "env": "nb", "path": "nb.ipynb"})
        await services.create(
            {
                "name": "hub-web",
                "kind": "script",
                "env": "ml",
                "path": "web.py",
                "health_check": {"type": "tcp", "host": "127.0.0.1", "port": 9},
            }
        )
        check = {c["id"]: c for c in (await run_doctor(services, paths))["checks"]}["runner"]
        assert check["ok"] is True and str(runner) in check["detail"], check

        # the server's env "upgraded": the interpreter is still there, jupyter_condasvc is not
        _exe(runner, '#!/bin/sh\nexec /usr/bin/python3 -I "$@"\n')
        check = {c["id"]: c for c in (await run_doctor(services, paths))["checks"]}["runner"]
        assert (
            check["ok"] is False
            and f"{runner} cannot import jupyter_condasvc (used by hub-nb, hub-web)" in check["detail"]
        )
        assert check["fix"]

        runner.unlink()  # moved away
        report = await run_doctor(services, paths)
        check = {c["id"]: c for c in report["checks"]}["runner"]
        assert check["ok"] is False and f"{runner} is missing (used by hub-nb, hub-web)" in check["detail"]
        assert report["ok"] is False
    finally:
        for name in ("hub-nb", "hub-web"):
            try:
                await services.delete(name)
            except Exception:  # noqa: BLE001 - not created
                pass
        await services.systemd.close()


async def test_preview_warns_when_the_runner_is_outside_the_chosen_env(api, root, conda_root):
    _notebook(root / "nb.ipynb")
    (root / "web.py").write_text("print(1)\n")
    code, preview = await api(
        "POST", "preview", body={"name": "draft", "kind": "notebook", "env": "nb", "path": "nb.ipynb"}
    )
    assert code == 200, preview
    assert any(
        w.startswith(
            f"The notebook runner runs with this server's interpreter {sys.executable}, outside the environment 'nb'"
        )
        for w in preview["warnings"]
    ), preview["warnings"]
    code, preview = await preview_script(api, "web.py", health_check={"type": "tcp", "host": "127.0.0.1", "port": 9})
    assert code == 200 and any(w.startswith("The health check runs with") for w in preview["warnings"]), preview
    code, preview = await preview_script(api, "web.py")
    assert code == 200 and preview["warnings"] == []


class TestRunnerInsideTheEnv:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, conda_root):
        cfg = {k: dict(v) for k, v in jp_server_config.items()}
        cfg["CondaSvcApp"]["runner_python"] = str(conda_root / "envs" / "nb" / "bin" / "python")
        return cfg

    async def test_no_warning_when_the_runner_lives_in_the_chosen_env(self, api, root):
        _notebook(root / "nb.ipynb")
        code, preview = await api(
            "POST", "preview", body={"name": "draft", "kind": "notebook", "env": "nb", "path": "nb.ipynb"}
        )
        assert code == 200 and not any("interpreter" in w for w in preview["warnings"]), preview
