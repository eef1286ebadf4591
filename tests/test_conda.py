"""Conda environment discovery, against real prefixes in tmp_path (no systemd)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jupyter_condasvc.conda import CondaEnv, EnvironmentFinder
from jupyter_condasvc.errors import EnvironmentNotFound

sys.path.insert(0, os.path.dirname(__file__))
from condaenv import base_interpreter, finder, interpreter_version, make_conda_env, make_conda_root


def mine(envs: list[CondaEnv], tmp_path: Path) -> list[CondaEnv]:
    """Only what this test built: the machine may have its own /opt/conda."""
    return [e for e in envs if e.prefix.startswith(str(tmp_path) + os.sep)]


def prefixes(envs: list[CondaEnv], tmp_path: Path) -> list[str]:
    return [e.prefix for e in mine(envs, tmp_path)]


async def test_environments_txt(home, tmp_path):
    a = make_conda_env(tmp_path / "elsewhere" / "alpha", register=home)
    b = make_conda_env(tmp_path / "other" / "beta", register=home)
    envs = mine(await finder().list_environments(), tmp_path)
    assert [e.prefix for e in envs] == [str(a), str(b)]
    # Neither is inside a known envs dir, so conda shows the prefix as the name.
    assert [e.name for e in envs] == [str(a), str(b)]
    assert all(e.root is None and not e.is_root for e in envs)


async def test_stale_entries_and_non_envs_are_skipped(home, tmp_path):
    alive = make_conda_env(tmp_path / "alive", register=home)
    gone = make_conda_env(tmp_path / "gone", register=home)
    shutil.rmtree(gone)
    not_env = tmp_path / "plain"
    (not_env / "conda-meta").mkdir(parents=True)  # no history: not an env
    with (home / ".conda" / "environments.txt").open("a") as f:
        f.write(f"\n# a comment\n{not_env}\n")
    (home / ".conda" / "envs" / "venv-only").mkdir(parents=True)
    assert prefixes(await finder().list_environments(), tmp_path) == [str(alive)]


async def test_condarc_envs_dirs(home, tmp_path, monkeypatch):
    store = tmp_path / "store"
    make_conda_env(store / "proj")
    make_conda_env(store / "analysis")
    (home / ".condarc").write_text("channels: [conda-forge]\nenvs_dirs:\n  - ~/../store\n")
    envs = mine(await finder().list_environments(), tmp_path)
    assert [(e.name, e.prefix) for e in envs] == [
        ("analysis", str(store / "analysis")),
        ("proj", str(store / "proj")),
    ]


async def test_condarc_from_variable_and_envs_path(home, tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    make_conda_env(one / "x")
    make_conda_env(two / "y")
    rc = tmp_path / "custom.condarc"
    rc.write_text("envs_dirs: [$STORE_ONE]\n")
    monkeypatch.setenv("STORE_ONE", str(one))
    monkeypatch.setenv("CONDARC", str(rc))
    monkeypatch.setenv("CONDA_ENVS_PATH", f"{tmp_path / 'missing'}:{two}")
    names = [e.name for e in mine(await finder().list_environments(), tmp_path)]
    assert names == ["y", "x"]  # variables come before condarc files


async def test_broken_condarc_is_ignored(home, tmp_path, caplog):
    make_conda_env(home / ".conda" / "envs" / "ok")
    (home / ".condarc").write_text("envs_dirs: [unclosed\n")
    f = finder(log=logging.getLogger("test_conda"))
    with caplog.at_level(logging.WARNING, "test_conda"):
        envs = mine(await f.list_environments(), tmp_path)
    assert [e.name for e in envs] == ["ok"]
    assert ".condarc" in caplog.text


async def test_roots_and_their_envs(home, tmp_path):
    root = make_conda_root(tmp_path / "inst", ["zeta", "alpha"])
    (root / "envs" / "broken").mkdir()  # no conda-meta/history
    user_env = make_conda_env(home / ".conda" / "envs" / "mine")
    envs = mine(await finder(conda_roots=[str(root)]).list_environments(), tmp_path)
    assert [(e.name, e.is_root, e.root) for e in envs] == [
        ("base", True, str(root)),
        ("alpha", False, str(root)),
        ("zeta", False, str(root)),
        ("mine", False, None),
    ]
    assert envs[-1].prefix == str(user_env)


async def test_default_install_location_and_conda_prefix_hint(home, tmp_path, monkeypatch):
    mini = make_conda_root(home / "miniconda3", ["a"])
    elsewhere = make_conda_root(tmp_path / "srv" / "conda", ["b"])
    # An activated env of another installation points at that installation.
    monkeypatch.setenv("CONDA_PREFIX", str(elsewhere / "envs" / "b"))
    envs = mine(await finder().list_environments(), tmp_path)
    assert [(e.name, e.prefix) for e in envs] == [
        ("base", str(elsewhere)),
        ("b", str(elsewhere / "envs" / "b")),
        ("base", str(mini)),
        ("a", str(mini / "envs" / "a")),
    ]


async def test_root_reached_through_environments_txt(home, tmp_path):
    root = make_conda_root(tmp_path / "somewhere", ["child"])
    (home / ".conda").mkdir()
    (home / ".conda" / "environments.txt").write_text(f"{root / 'envs' / 'child'}\n")
    envs = mine(await finder().list_environments(), tmp_path)
    assert [(e.name, e.is_root, e.root) for e in envs] == [
        ("base", True, str(root)),
        ("child", False, str(root)),
    ]


async def test_dedup_same_env_two_ways_and_via_symlink(home, tmp_path):
    root = make_conda_root(tmp_path / "inst", ["dup"])
    link = tmp_path / "link-to-dup"
    link.symlink_to(root / "envs" / "dup")
    envs_txt = home / ".conda" / "environments.txt"
    envs_txt.parent.mkdir()
    envs_txt.write_text(f"{root / 'envs' / 'dup'}\n{link}\n{root}/envs/../envs/dup\n")
    (home / ".condarc").write_text(f"envs_dirs: [{root / 'envs'}]\n")
    envs = mine(await finder(conda_roots=[str(root), str(root) + "/"]).list_environments(), tmp_path)
    assert [(e.name, e.prefix) for e in envs] == [
        ("base", str(root)),
        ("dup", str(root / "envs" / "dup")),
    ]
    assert (await finder().get(str(link))).prefix == str(root / "envs" / "dup")


async def test_python_version_and_ipykernel(home, tmp_path):
    expected = interpreter_version(base_interpreter())
    env = make_conda_env(tmp_path / "p", register=home)
    found = await finder().get(str(env))
    assert found.python == str(env / "bin" / "python")
    assert found.bin_dir == str(env / "bin")
    assert found.python_version == expected
    assert found.has_ipykernel is False
    run = subprocess.run([found.python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == str(env)
    assert json.loads(json.dumps(found.to_json())) == {
        "name": str(env),
        "prefix": str(env),
        "python": str(env / "bin" / "python"),
        "python_version": expected,
        "has_ipykernel": False,
        "root": None,
        "is_root": False,
        "kind": "conda",
        "is_server": False,
        "label": str(env),
    }


async def test_python_version_fallbacks(home, tmp_path):
    expected = interpreter_version(base_interpreter())
    from_cfg = make_conda_env(tmp_path / "cfg", register=home)
    for rec in (from_cfg / "conda-meta").glob("python-*.json"):
        rec.unlink()
    (from_cfg / "pyvenv.cfg").write_text("home = /nowhere\nversion_info = 3.99.1.final.0\n")
    by_running = make_conda_env(tmp_path / "run", register=home)
    for rec in (by_running / "conda-meta").glob("python-*.json"):
        rec.unlink()
    (by_running / "pyvenv.cfg").unlink()  # bin/python still runs: a symlink to the base
    no_python = tmp_path / "nopy"
    (no_python / "conda-meta").mkdir(parents=True)
    (no_python / "conda-meta" / "history").write_text("==> 2026-01-15 09:30:00 <==\n")
    with (home / ".conda" / "environments.txt").open("a") as f:
        f.write(f"{no_python}\n")
    envs = {e.prefix: e for e in mine(await finder().list_environments(), tmp_path)}
    assert envs[str(from_cfg)].python_version == "3.99.1"
    assert envs[str(by_running)].python_version == expected
    assert envs[str(no_python)].python is None
    assert envs[str(no_python)].python_version is None


async def test_has_ipykernel_from_conda_record_or_site_packages(home, tmp_path):
    by_record = make_conda_env(tmp_path / "rec", register=home)
    (by_record / "conda-meta" / "ipykernel-6.29.5-pyh3099207_0.json").write_text('{"name": "ipykernel"}')
    by_dir = make_conda_env(tmp_path / "dir", register=home)
    for site in (by_dir / "lib").glob("python*/site-packages"):
        (site / "ipykernel").mkdir()
    decoy = make_conda_env(tmp_path / "decoy", register=home)
    (decoy / "conda-meta" / "ipykernel_launcher-1.0-0.json").write_text("{}")
    envs = {e.prefix: e.has_ipykernel for e in mine(await finder().list_environments(), tmp_path)}
    assert envs == {str(by_record): True, str(by_dir): True, str(decoy): False}


async def test_ipykernel_env_really_imports_ipykernel(home, tmp_path):
    env = make_conda_env(tmp_path / "kern", ipykernel=True, register=home)  # skips without ipykernel
    found = await finder().get(str(env))
    assert found.has_ipykernel
    run = subprocess.run([found.python, "-c", "import ipykernel"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


async def test_get_by_name_and_prefix(home, tmp_path):
    first = make_conda_root(tmp_path / "first", ["shared"])
    second = make_conda_root(tmp_path / "second", ["shared", "only"])
    f = finder(conda_roots=[str(first), str(second)])
    assert (await f.get("only")).prefix == str(second / "envs" / "only")
    # Ambiguous names resolve to the first in search order.
    assert (await f.get("shared")).prefix == str(first / "envs" / "shared")
    assert (await f.get("base")).prefix == str(first)
    assert (await f.get(str(second / "envs" / "shared"))).root == str(second)
    assert (await f.get(str(second) + "/envs/./shared/")).name == "shared"


async def test_get_unknown_names_the_known_environments(home, tmp_path):
    make_conda_root(tmp_path / "inst", ["a", "b"])
    f = finder(conda_roots=[str(tmp_path / "inst")])
    with pytest.raises(EnvironmentNotFound) as err:
        await f.get("nope")
    assert err.value.status == 404
    msg = err.value.message
    assert msg.startswith("No environment named 'nope'. Known environments: ")
    assert "base, a, b" in msg and msg.endswith(".")
    with pytest.raises(EnvironmentNotFound, match="No environment at '/does/not/exist'"):
        await f.get("/does/not/exist")


async def test_get_finds_a_new_env_without_waiting_for_the_cache(home, tmp_path):
    f = finder(cache_seconds=3600)
    assert mine(await f.list_environments(), tmp_path) == []
    make_conda_env(home / ".conda" / "envs" / "fresh")
    assert (await f.get("fresh")).prefix == str(home / ".conda" / "envs" / "fresh")


async def test_cache_until_refresh(home, tmp_path):
    make_conda_env(home / ".conda" / "envs" / "one")
    f = finder(cache_seconds=3600)
    assert [e.name for e in mine(await f.list_environments(), tmp_path)] == ["one"]
    make_conda_env(home / ".conda" / "envs" / "two")
    assert [e.name for e in mine(await f.list_environments(), tmp_path)] == ["one"]
    assert [e.name for e in mine(await f.list_environments(refresh=True), tmp_path)] == ["one", "two"]


async def test_cache_expires(home, tmp_path):
    make_conda_env(home / ".conda" / "envs" / "one")
    f = finder(cache_seconds=0.2)
    await f.list_environments()
    make_conda_env(home / ".conda" / "envs" / "two")
    await asyncio.sleep(0.25)
    assert [e.name for e in mine(await f.list_environments(), tmp_path)] == ["one", "two"]


async def test_concurrent_callers_share_one_walk_off_the_loop(home, tmp_path):
    make_conda_env(home / ".conda" / "envs" / "one")
    f = finder()
    walks = 0
    real_walk = f._walk

    def counting_walk(*args):
        nonlocal walks
        walks += 1
        time.sleep(0.3)  # a slow disk: the loop must keep running meanwhile
        return real_walk(*args)

    f._walk = counting_walk
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.ensure_future(ticker())
    try:
        results = await asyncio.gather(*(f.list_environments() for _ in range(10)))
    finally:
        t.cancel()
    assert walks == 1
    assert ticks >= 10  # the event loop was not blocked by the walk
    assert all([e.name for e in mine(r, tmp_path)] == ["one"] for r in results)
    await f.list_environments()
    assert walks == 1  # cached


def fake_conda(bin_dir: Path, name: str, body: str) -> Path:
    """A real executable that answers ``env list --json`` the way conda does."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return exe


async def test_conda_executable_on_path(home, tmp_path, monkeypatch):
    only_conda_knows = make_conda_env(tmp_path / "hidden" / "secret")
    root = make_conda_root(tmp_path / "inst", ["child"])
    args = tmp_path / "args"
    listing = json.dumps({"envs": [str(root), str(root / "envs" / "child"), str(only_conda_knows)]})
    fake_conda(tmp_path / "bin", "conda", f"echo \"$@\" > {args}\nprintf '%s' '{listing}'\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    envs = mine(await EnvironmentFinder().list_environments(), tmp_path)
    assert args.read_text().strip() == "env list --json"
    assert [(e.name, e.is_root) for e in envs] == [
        ("base", True),
        ("child", False),
        (str(only_conda_knows), False),
    ]


async def test_mamba_exe_variable_is_used(home, tmp_path, monkeypatch):
    env = make_conda_env(tmp_path / "via-mamba")
    exe = fake_conda(tmp_path / "tools", "micromamba", f"printf '%s' '{json.dumps({'envs': [str(env)]})}'\n")
    monkeypatch.setenv("MAMBA_EXE", str(exe))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert prefixes(await EnvironmentFinder().list_environments(), tmp_path) == [str(env)]


@pytest.mark.parametrize(
    "body, warning",
    [
        ("echo 'CondaError: boom' >&2\nexit 1\n", "exit status 1"),
        ("echo 'not json'\n", "no list of environments"),
        ("exec /bin/sleep 30\n", "did not answer"),
    ],
    ids=["fails", "garbage", "hangs"],
)
async def test_failing_executable_falls_back_to_disk(home, tmp_path, monkeypatch, caplog, body, warning):
    env = make_conda_env(home / ".conda" / "envs" / "on-disk")
    exe = fake_conda(tmp_path / "bin", "conda", body)
    f = EnvironmentFinder(conda_executable=str(exe), conda_timeout=0.5, log=logging.getLogger("test_conda"))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "test_conda"):
        envs = mine(await f.list_environments(), tmp_path)
    assert time.monotonic() - started < 10
    assert [(e.name, e.prefix) for e in envs] == [("on-disk", str(env))]
    assert warning in caplog.text and "reading the disk instead" in caplog.text


async def test_executable_disabled_is_not_run(home, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    fake_conda(tmp_path / "bin", "conda", f"touch {marker}\necho '{{\"envs\": []}}'\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    await EnvironmentFinder(use_conda_executable=False).list_environments()
    assert not marker.exists()


def test_traits_are_documented_settings():
    for name in (
        "conda_roots",
        "envs_dirs",
        "use_conda_executable",
        "conda_executable",
        "conda_timeout",
        "cache_seconds",
    ):
        trait = EnvironmentFinder.class_traits()[name]
        assert trait.metadata.get("config") is True and len(trait.help) > 40, name
    assert EnvironmentFinder().cache_seconds == 30


async def test_refresh_during_a_search_wins(home, tmp_path):
    make_conda_env(home / ".conda" / "envs" / "one")
    f = finder(cache_seconds=3600)
    real_walk = f._walk
    walked, release = threading.Event(), threading.Event()

    def held_walk(*args):
        result = real_walk(*args)
        walked.set()
        release.wait(10)
        return result

    f._walk = held_walk
    old = asyncio.ensure_future(f.list_environments())
    assert await asyncio.get_running_loop().run_in_executor(None, walked.wait, 10)
    make_conda_env(home / ".conda" / "envs" / "two")  # the old search has missed it
    f._walk = real_walk
    fresh = await f.list_environments(refresh=True)
    release.set()
    assert [e.name for e in mine(fresh, tmp_path)] == ["one", "two"]
    assert [e.name for e in mine(await old, tmp_path)] == ["one"]
    # The older search finished last but must not replace the newer cache.
    assert [e.name for e in mine(await f.list_environments(), tmp_path)] == ["one", "two"]
