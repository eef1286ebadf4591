"""environment.yml export: from conda when present, from conda-meta and pip metadata otherwise; drift."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from condaenv import interpreter_version, make_conda_env
from jupyter_condasvc.envexport import (
    channel_name,
    drift,
    export_environment,
    export_from_files,
    packages,
    pip_packages,
    to_yaml,
)
from test_cli import Cli, write_config


def add_dist_info(prefix: Path, name: str, version: str, installer: str) -> None:
    version_dir = next((prefix / "lib").glob("python*"))
    info = version_dir / "site-packages" / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "INSTALLER").write_text(f"{installer}\n")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nlong description\n")


def add_record(prefix: Path, name: str, version: str, build: str, channel: str) -> Path:
    path = prefix / "conda-meta" / f"{name}-{version}-{build}.json"
    path.write_text(json.dumps({"name": name, "version": version, "build": build, "channel": channel, "files": []}))
    return path


def valid_environment_file(text: str) -> dict:
    data = yaml.safe_load(text)
    assert isinstance(data, dict) and set(data) == {"name", "channels", "dependencies"}, data
    assert (
        isinstance(data["name"], str) and isinstance(data["channels"], list) and isinstance(data["dependencies"], list)
    )
    return data


@pytest.fixture(scope="module")
def env_prefix(tmp_path_factory) -> Path:
    prefix = make_conda_env(tmp_path_factory.mktemp("envs") / "analysis")
    add_record(prefix, "numpy", "1.26.4", "py311h64a7726_0", "https://conda.anaconda.org/conda-forge/linux-64")
    add_record(prefix, "zlib", "1.3", "h5eee18b_0", "https://repo.anaconda.com/pkgs/main/linux-64")
    add_dist_info(prefix, "requests", "2.31.0", "pip")
    add_dist_info(prefix, "Some_Pkg", "0.1", "pip")
    add_dist_info(prefix, "numpy", "1.26.4", "conda")  # conda's own python package: not a pip dependency
    return prefix


def test_channel_names():
    assert channel_name({"channel": "https://conda.anaconda.org/conda-forge/linux-64"}) == "conda-forge"
    assert (
        channel_name({"channel": "https://conda.anaconda.org/pytorch/label/nightly/noarch"}) == "pytorch/label/nightly"
    )
    assert channel_name({"channel": "https://repo.anaconda.com/pkgs/main/linux-64"}) == "defaults"
    assert channel_name({"channel": "conda-forge"}) == "conda-forge"
    assert channel_name({"schannel": "bioconda", "channel": "https://conda.anaconda.org/bioconda/noarch"}) == "bioconda"
    assert (
        channel_name({"channel": "https://mirror.example/conda/main/linux-64/"}) == "https://mirror.example/conda/main"
    )
    assert channel_name({"channel": "pypi"}) is None and channel_name({}) is None


def test_export_from_files(env_prefix):
    version = interpreter_version(str(env_prefix / "bin" / "python"))
    assert pip_packages(str(env_prefix)) == [("requests", "2.31.0"), ("Some_Pkg", "0.1")]
    data = export_from_files(str(env_prefix), "analysis")
    assert data["name"] == "analysis"
    assert data["channels"] == ["conda-forge", "defaults"]  # most used first
    deps = data["dependencies"]
    assert (
        f"python={version}=h12345_0" in deps
        and "numpy=1.26.4=py311h64a7726_0" in deps
        and "zlib=1.3=h5eee18b_0" in deps
    )
    assert "pip" in deps  # the pip section needs pip
    assert deps[-1] == {"pip": ["requests==2.31.0", "Some_Pkg==0.1"]}
    text = to_yaml(data, source="test")
    assert valid_environment_file(text) == data


async def test_export_environment_reparses(env_prefix):
    text = await export_environment(str(env_prefix), "analysis")
    data = valid_environment_file(text)
    assert "prefix" not in data and data["name"] == "analysis"
    # a bare prefix is named after its folder
    assert valid_environment_file(await export_environment(str(env_prefix), str(env_prefix)))["name"] == "analysis"


async def test_export_asks_conda_when_there_is_one(env_prefix, tmp_path):
    conda = tmp_path / "conda"
    conda.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2 $3 $4" = "env export -p ' + str(env_prefix) + '" ] || exit 9\n'
        "cat <<'YAML'\nname: analysis\nchannels:\n  - conda-forge\ndependencies:\n  - numpy=1.26.4=py311h64a7726_0\n"
        "  - pip:\n    - requests==2.31.0\nprefix: " + str(env_prefix) + "\nYAML\n"
    )
    conda.chmod(0o755)
    text = await export_environment(str(env_prefix), "analysis", conda_executable=str(conda))
    assert text.startswith("# `conda env export -p")
    data = valid_environment_file(text)
    assert data["dependencies"] == ["numpy=1.26.4=py311h64a7726_0", {"pip": ["requests==2.31.0"]}]
    # a conda that fails: the files are read instead
    broken = tmp_path / "broken-conda"
    broken.write_text("#!/bin/sh\necho boom >&2\nexit 1\n")
    broken.chmod(0o755)
    text = await export_environment(str(env_prefix), "analysis", conda_executable=str(broken))
    assert "conda-meta and pip metadata" in text.splitlines()[0]
    assert "zlib=1.3=h5eee18b_0" in valid_environment_file(text)["dependencies"]


def test_drift():
    before = "name: x\ndependencies:\n  - python=3.11.7=h1_0\n  - numpy=1.26.4=py_0\n  - zlib=1.3=h_0\n  - pip:\n    - requests==2.31.0\n"
    after = "name: x\ndependencies:\n  - python=3.11.7=h1_0\n  - conda-forge::numpy=2.0.0=py_0\n  - scipy=1.13=py_0\n  - pip:\n    - requests==2.32.0\n    - rich==13.0\n"
    assert packages(before)["pip:requests"] == "requests==2.31.0"
    d = drift(before, after)
    assert d["added"] == ["rich==13.0", "scipy=1.13=py_0"]
    assert d["removed"] == ["zlib=1.3=h_0"]
    assert d["changed"] == [
        {"name": "numpy", "registered": "numpy=1.26.4=py_0", "current": "numpy=2.0.0=py_0"},
        {"name": "requests (pip)", "registered": "requests==2.31.0", "current": "requests==2.32.0"},
    ]
    assert drift(before, before) == {"added": [], "removed": [], "changed": []}


# -- stored at registration, served by the API and the CLI (real stack) --------------------------


@pytest.mark.systemd
async def test_registration_stores_the_environment_and_drift_shows(api, root, conda_root, state_dir):
    (root / "job.py").write_text("print('job')\n")
    code, svc = await api(
        "POST", "services", body={"name": "exported", "kind": "script", "env": "ml", "path": "job.py"}
    )
    assert code == 201, svc
    stored = state_dir / "exported.environment.yml"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    data = valid_environment_file(stored.read_text())
    assert data["name"] == "ml" and any(d.startswith("python=") for d in data["dependencies"] if isinstance(d, str))

    code, env = await api("GET", "services", "exported", "environment")
    assert code == 200, env
    assert env["registered"] == stored.read_text()
    assert env["env_prefix"] == str(conda_root / "envs" / "ml")
    valid_environment_file(env["current"])
    assert env["drift"] == {"added": [], "removed": [], "changed": []}

    record = add_record(
        conda_root / "envs" / "ml", "fakepkg", "0.0.1", "h0_0", "https://conda.anaconda.org/conda-forge/linux-64"
    )
    try:
        code, env = await api("GET", "services", "exported", "environment")
        assert code == 200 and env["drift"]["added"] == ["fakepkg=0.0.1=h0_0"]
        assert env["drift"]["removed"] == [] and env["drift"]["changed"] == []
    finally:
        record.unlink()

    code, _ = await api("DELETE", "services", "exported")
    assert code == 204
    assert not stored.exists()
    code, err = await api("GET", "services", "exported", "environment")
    assert code == 404


@pytest.mark.systemd
def test_cli_export_env(tmp_path, conda_root, state_dir):
    root = tmp_path / "root"
    root.mkdir()
    (root / "job.py").write_text("print('job')\n")
    write_config(tmp_path / "cfg", [conda_root], state_dir)
    cli = Cli(tmp_path / "cfg", root)
    by_env = cli("export-env", "--env", "nb")
    assert by_env.returncode == 0, by_env.stderr
    data = valid_environment_file(by_env.stdout)
    assert data["name"] == "nb" and any(str(d).startswith("ipykernel=") for d in data["dependencies"])

    assert cli("create", "exp", "--env", "ml", "--path", "job.py").returncode == 0
    try:
        out = cli("export-env", "exp", "-o", str(tmp_path / "environment.yml"))
        assert out.returncode == 0 and out.stdout == ""
        valid_environment_file((tmp_path / "environment.yml").read_text())
        registered = cli("export-env", "exp", "--registered")
        assert registered.stdout == (state_dir / "exp.environment.yml").read_text()
        assert "No drift" in cli("export-env", "exp", "--drift").stdout
        record = add_record(conda_root / "envs" / "ml", "fakepkg", "0.0.1", "h0_0", "conda-forge")
        try:
            assert "+ fakepkg=0.0.1=h0_0" in cli("export-env", "exp", "--drift").stdout
            assert cli.json("export-env", "exp")["drift"]["added"] == ["fakepkg=0.0.1=h0_0"]
        finally:
            record.unlink()
    finally:
        assert cli("delete", "exp").returncode == 0
