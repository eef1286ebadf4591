"""Property: whatever argv and variables are submitted reach the process exactly.

For arbitrary argv words and variable values, the service is created through
the API, started by the real user manager, and then
* the ExecStart property systemd reports (its own parse of our unit) equals
  the submitted argv, and
* the process sees exactly the submitted variables (plus the ones we set).
Anything that cannot round-trip must be refused with a 400 instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import PREFIX, SYSTEMD_SET_ENV, wait_for
from jupyter_condasvc.units import user_argv

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(3600)]  # the thorough profile runs long

DUMP = "import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, open(os.environ['OUT_FILE'], 'w'))"

# Any Unicode text except surrogates; NUL and line breaks must be refused.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
words = st.lists(text, max_size=5)
var_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: n not in ("PATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONUNBUFFERED", "OUT_FILE")
)
variables = st.dictionaries(var_names, text, max_size=4)
counter = iter(range(10**6))


@settings(suppress_health_check=list(HealthCheck))
@given(args=words, env=variables)
def test_argv_and_variables_round_trip(api, root, conda_root, jp_serverapp, jp_asyncio_loop, args, env):
    # Sync test driving the server's loop per example: hypothesis cannot await.
    jp_asyncio_loop.run_until_complete(_example(api, root, conda_root, jp_serverapp, args, env))


async def _example(api, root, conda_root, jp_serverapp, args, env):
    name = f"prop{next(counter)}"
    out = Path(root) / f"{name}.json"
    env = {k: v for k, v in env.items() if k not in SYSTEMD_SET_ENV}
    argv = ["python", "-c", DUMP, *args]
    spec = {
        "name": name,
        "kind": "command",
        "env": "ml",
        "argv": argv,
        "restart": "no",
        "environment": {**env, "OUT_FILE": str(out)},
    }
    code, body = await api("POST", "services", body=spec)
    bad_word = any(("\x00" in a or "\n" in a or "\r" in a) for a in args)
    bad_var = any("\x00" in v for v in env.values())
    if bad_word or bad_var:
        assert code == 400, body
        assert not list(Path(root).glob(f"{name}*"))
        return
    assert code == 201, body
    try:
        await api("POST", "services", name, "start")
        data = await wait_for(lambda: _read(out), timeout=20)
        systemd = jp_serverapp.web_app.settings["condasvc_systemd"]
        props = await systemd.get_unit_properties(f"{PREFIX}{name}.service", fresh=True)
        exec_start = props["ExecStart"][0]
        python = str(conda_root / "envs" / "ml" / "bin" / "python")
        assert user_argv(exec_start[1]) == [python, "-c", DUMP, *args]
        assert data["argv"] == args
        for key, value in env.items():
            assert data["env"].get(key) == value, key
        assert data["env"]["CONDA_DEFAULT_ENV"] == "ml"
        assert data["env"]["PATH"].startswith(f"{conda_root}/envs/ml/bin:")
    finally:
        code, _ = await api("DELETE", "services", name)
        assert code == 204


async def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
