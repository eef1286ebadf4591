"""The generated references are current, and the docs cover what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import DOCTOR_CHECKS

DOCS = Path(__file__).resolve().parent.parent / "docs"
REPO = DOCS.parent


@pytest.mark.parametrize(
    "script,target",
    [
        ("gen_config.py", "configuration.md"),
        ("gen_rest.py", "rest.md"),
        ("gen_cli.py", "cli.md"),
    ],
)
def test_generated_reference_is_current(script, target):
    out = subprocess.run(
        [sys.executable, str(DOCS / script), "--check"], capture_output=True, text=True, cwd=str(REPO), timeout=120
    )
    assert out.returncode == 0, f"{out.stderr.strip()} (docs/{target} must match what docs/{script} generates)"


def test_every_trait_and_endpoint_and_command_is_documented():
    config = (DOCS / "configuration.md").read_text()
    from jupyter_condasvc.app import CondaSvcApp
    from jupyter_condasvc.conda import EnvironmentFinder
    from jupyter_condasvc.systemd import SystemdManager

    for cls in (CondaSvcApp, EnvironmentFinder, SystemdManager):
        for name in cls.class_own_traits(config=True):
            assert f"`c.{cls.__name__}.{name}`" in config
    rest = (DOCS / "rest.md").read_text()
    spec = yaml.safe_load((REPO / "jupyter_condasvc" / "openapi.yaml").read_text())
    for path in spec["paths"]:
        assert f"`{path}`" in rest
    cli = (DOCS / "cli.md").read_text()
    from jupyter_condasvc.cli import COMMANDS

    for command in COMMANDS:
        assert f"### {command}\n" in cli


def test_troubleshooting_covers_every_doctor_check():
    text = (DOCS / "troubleshooting.md").read_text()
    for check_id in DOCTOR_CHECKS:
        assert f"`{check_id}`" in text, check_id


def test_binder_files():
    env = yaml.safe_load((REPO / "binder" / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("nodejs") for d in deps) and any(d.startswith("jupyterlab") for d in deps) and "pip" in deps
    post = REPO / "binder" / "postBuild"
    assert post.stat().st_mode & 0o111 and "pip install" in post.read_text()
    assert "libsystemd-dev" in (REPO / "binder" / "apt.txt").read_text()


def test_jupyterhub_snippet_is_the_one_the_hub_phase_runs():
    """docs/jupyterhub.md's c.Spawner.environment snippet is, verbatim, what labextension/ui-tests/hub runs."""
    import re

    docs = (DOCS / "jupyterhub.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", docs, re.S) if "c.Spawner.environment" in b]
    assert len(blocks) == 1, blocks
    config = (REPO / "labextension" / "ui-tests" / "hub" / "jupyterhub_config.py").read_text()
    marked = config.split("(tests/test_docs.py checks it) ---\n", 1)[1].split("# --- end of the snippet ---", 1)[0]
    assert blocks[0].strip() == marked.strip()
    # the snippet has no template; the docs name the templated value only to warn against it
    assert (
        "{uid}" not in blocks[0]
        and 'Do **not** write `c.Spawner.environment = {"XDG_RUNTIME_DIR": "/run/user/{uid}"}`' in docs
    )
