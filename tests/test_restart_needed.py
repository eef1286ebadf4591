"""unit_changed: when an edit changed what a running process would run with ("restart needed")."""

from __future__ import annotations

import pytest

from helpers import create, wait_for

pytestmark = pytest.mark.systemd

LOOP = "import time\nwhile True:\n    time.sleep(0.5)\n"


async def test_unit_changed_moves_only_for_what_the_process_runs_with(api, root):
    svc = await create(api, root, "rneeded", LOOP)
    assert svc["unit_changed"] == svc["created"]
    code, _ = await api("POST", "services", "rneeded", "start")
    assert code == 200

    async def running():
        code, s = await api("GET", "services", "rneeded")
        return s if s["status"]["active_state"] == "active" else None

    await wait_for(running, timeout=30)
    # A description only changes the unit's text, not the running process.
    code, svc2 = await api("PATCH", "services", "rneeded", body={"description": "only words"})
    assert code == 200, svc2
    assert svc2["unit_changed"] == svc["unit_changed"]
    # New arguments: the process runs the old ones until restarted.
    code, svc3 = await api("PATCH", "services", "rneeded", body={"args": ["--greeting", "hi there"]})
    assert code == 200, svc3
    assert svc3["unit_changed"] > svc["unit_changed"]
    # A variable too.
    code, svc4 = await api("PATCH", "services", "rneeded", body={"environment": {"MODE": "fast"}})
    assert code == 200 and svc4["unit_changed"] > svc3["unit_changed"]
    await api("DELETE", "services", "rneeded")
