"""No local user manager, but other hosts configured: the combined list still answers, and says why local is empty.

The other host here is one ssh cannot resolve (real ssh, no mock): its row is connecting or down, never missing.
"""

from __future__ import annotations

import pytest

#: These tests make the manager unreachable themselves, so they run with or without one.
pytestmark = pytest.mark.no_user_manager

HOST = "nosuchhost.invalid"


@pytest.fixture
def jp_server_config(jp_server_config, tmp_path):
    cfg = dict(jp_server_config)
    cfg["SystemdManager"] = {"bus_address": f"unix:path={tmp_path}/no-bus-here", "call_timeout": 2.0}
    cfg["CondaSvcApp"] = {**cfg.get("CondaSvcApp", {}), "hosts": [HOST]}
    return cfg


async def test_the_list_of_every_host_answers_without_the_local_manager(api):
    code, data = await api("GET", "services")
    assert code == 200, data
    rows = {row["name"]: row for row in data["hosts"]}
    assert rows["local"]["state"] == "down" and rows["local"]["error"]["kind"] == "manager"
    assert "not reachable" in rows["local"]["error"]["message"]
    assert rows[HOST]["state"] in ("connecting", "down")
    assert not [s for s in data["services"] if s["host"] == "local"]
    # this host alone is still its 503, with the same words
    code, err = await api("GET", "services", host="local")
    assert code == 503 and "not reachable" in err["message"]
