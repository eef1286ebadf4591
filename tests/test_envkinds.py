"""Environments that are not conda's: the server's own, venvs (venv, virtualenv, uv), pixi.

Discovery runs against real venvs made here with ``python -m venv``; the
end-to-end tests run a service in one on the real user manager.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_condasvc.conda import CondaEnv, install_hint
from jupyter_condasvc.errors import EnvironmentNotFound

sys.path.insert(0, os.path.dirname(__file__))
from condaenv import base_interpreter, finder, make_conda_env
from helpers import UNIT_DIR, wait_for


def make_venv(prefix: Path, tool_key: str = "") -> Path:
    """A real venv (``python -m venv``); ``tool_key`` adds the line virtualenv or uv write to pyvenv.cfg."""
    subprocess.run([base_interpreter(), "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    if tool_key:
        with open(prefix / "pyvenv.cfg", "a", encoding="utf-8") as f:
            f.write(f"{tool_key} = 0.1.0\n")
    return prefix


def by_prefix(envs: list[CondaEnv]) -> dict[str, CondaEnv]:
    return {e.prefix: e for e in envs}


async def test_server_environment_comes_first(home, tmp_path):
    envs = await finder().list_environments()
    first = envs[0]
    assert first.is_server and os.path.realpath(first.prefix) == os.path.realpath(sys.prefix)
    assert first.python and os.path.isabs(first.python) and os.access(first.python, os.X_OK)
    assert "server" in first.label
    assert sum(e.is_server for e in envs) == 1
    assert not any(e.is_server for e in await finder(offer_server_environment=False).list_environments())


async def test_project_venvs_and_pixi_envs(home, tmp_path):
    project = tmp_path / "project"
    top = make_venv(project / ".venv")
    sub = make_venv(project / "app" / "venv")
    deep = make_venv(project / "app" / "deeper" / ".venv")  # two levels down: not searched
    pixi = make_conda_env(project / ".pixi" / "envs" / "default")
    (project / "node_modules" / ".venv").mkdir(parents=True)
    found = by_prefix(await finder(project).list_environments())
    assert found[str(top)].kind == "venv" and found[str(top)].label == "./.venv"
    assert found[str(top)].name == str(top), "a venv is named by its absolute prefix"
    assert found[str(top)].python == str(top / "bin" / "python")
    assert found[str(top)].python_version and not found[str(top)].is_root
    assert found[str(sub)].label == "./app/venv"
    assert str(deep) not in found
    assert found[str(pixi)].kind == "pixi" and found[str(pixi)].label == "./.pixi/envs/default"
    assert not any(e.kind == "venv" and "node_modules" in e.prefix for e in found.values())
    # Off by setting
    off = by_prefix(await finder(project, search_project=False).list_environments())
    assert str(top) not in off and str(pixi) not in off


async def test_virtualenvs_folders_and_tool_kinds(home, tmp_path, monkeypatch):
    plain = make_venv(home / ".virtualenvs" / "plain")
    ve = make_venv(home / ".virtualenvs" / "made-by-virtualenv", "virtualenv")
    uv = make_venv(home / ".virtualenvs" / "made-by-uv", "uv")
    workon = make_venv(tmp_path / "workon" / "wrapped")
    broken = make_venv(home / ".virtualenvs" / "broken")
    (broken / "bin" / "python").unlink()
    not_a_venv = home / ".virtualenvs" / "notes"
    not_a_venv.mkdir()
    monkeypatch.setenv("WORKON_HOME", str(tmp_path / "workon"))
    found = by_prefix(await finder().list_environments())
    assert found[str(plain)].kind == "venv" and found[str(plain)].label == "~/.virtualenvs/plain"
    assert found[str(ve)].kind == "virtualenv"
    assert found[str(uv)].kind == "uv"
    assert found[str(workon)].kind == "venv"
    assert str(broken) not in found and str(not_a_venv) not in found


async def test_get_a_venv_by_prefix_and_unknown_names_it(home, tmp_path):
    venv = make_venv(tmp_path / "project" / ".venv")
    f = finder(tmp_path / "project")
    assert (await f.get(str(venv))).kind == "venv"
    with pytest.raises(EnvironmentNotFound, match="No environment named 'nope'"):
        await f.get("nope")


async def test_a_conda_env_found_twice_is_listed_once(home, tmp_path):
    """A conda env inside the project (.venv made by conda) is described once, as conda's."""
    project = tmp_path / "project"
    env = make_conda_env(project / ".venv", register=home)
    envs = [e for e in await finder(project).list_environments() if e.prefix == str(env)]
    assert len(envs) == 1 and envs[0].kind == "conda"


def test_install_hints_follow_the_kind():
    def env(kind, name="/p", is_server=False):
        return CondaEnv(name, "/p", None, None, False, None, False, kind=kind, is_server=is_server)

    assert install_hint(env("venv"), "ipykernel") == "/p/bin/python -m pip install ipykernel"
    assert install_hint(env("uv"), "ipykernel") == "uv pip install -p /p ipykernel"
    assert install_hint(env("pixi"), "ipykernel") == "pixi add ipykernel"
    assert install_hint(env("conda", "ml"), "ipykernel") == "conda install -n ml ipykernel"
    assert install_hint(env("conda"), "ipykernel") == "conda install -p /p ipykernel"


# ---- on the real user manager --------------------------------------------------------------------

VENV_SCRIPT = """\
import os, sys, time
print("prefix", sys.prefix, "virtual_env", os.environ.get("VIRTUAL_ENV"), "conda", os.environ.get("CONDA_PREFIX"), flush=True)
print("path0", os.environ["PATH"].split(":")[0], flush=True)
while True:
    time.sleep(0.5)
"""


@pytest.mark.systemd
async def test_service_in_a_project_venv(api, root, unit_name):
    venv = make_venv(root / ".venv")
    code, body = await api("GET", "environments", refresh="1")
    assert code == 200
    listed = by_prefix([CondaEnv(**e) for e in body["environments"]])
    assert listed[str(venv)].kind == "venv" and listed[str(venv)].label == "./.venv"
    assert body["environments"][0]["is_server"], "the server's environment is listed first"
    (root / "web.py").write_text(VENV_SCRIPT)
    code, svc = await api(
        "POST", "services", body={"name": "invenv", "kind": "script", "env": str(venv), "path": "web.py"}
    )
    assert code == 201, svc
    text = (UNIT_DIR / unit_name("invenv")).read_text()
    assert f'"VIRTUAL_ENV={venv}"' in text and "CONDA_PREFIX" not in text
    assert f"Description=invenv (venv {venv})" in text
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert f'"{venv}/bin/python" "-u"' in exec_start, exec_start
    code, _ = await api("POST", "services", "invenv", "start")
    assert code == 200

    async def logged():
        code, body = await api("GET", "services", "invenv", "logs", n="20")
        lines = [e["message"] for e in body["entries"]] if code == 200 else []
        return [m for m in lines if m.startswith("prefix ")] and [m for m in lines if m.startswith("path0 ")] and lines

    lines = await wait_for(logged, timeout=30)
    assert f"prefix {venv} virtual_env {venv} conda None" in lines
    assert f"path0 {venv}/bin" in lines
    await api("DELETE", "services", "invenv")


@pytest.mark.systemd
async def test_env_without_python_is_refused_on_the_env_field(api, root, conda_root):
    bare = conda_root / "envs" / f"bare{os.getpid()}"
    (bare / "conda-meta").mkdir(parents=True)
    (bare / "conda-meta" / "history").write_text("")
    try:
        (root / "x.py").write_text("print(1)\n")
        code, body = await api("GET", "environments", refresh="1")
        listed = {e["name"]: e for e in body["environments"]}
        assert listed[bare.name]["python"] is None
        code, err = await api(
            "POST", "preview", body={"name": "nopy", "kind": "script", "env": bare.name, "path": "x.py"}
        )
        assert code == 400 and err["field"] == "env", err
        assert (
            "has no Python interpreter" in err["message"] and f"conda install -n {bare.name} python" in err["message"]
        )
    finally:
        import shutil

        shutil.rmtree(bare)
