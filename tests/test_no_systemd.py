"""Binder-like hosts: no systemd user manager at all. The API says so and still previews units."""
from __future__ import annotations

import pytest


@pytest.fixture
def jp_server_config(jp_server_config, tmp_path):
    cfg = dict(jp_server_config)
    cfg["SystemdManager"] = {"bus_address": f"unix:path={tmp_path}/no-bus-here", "call_timeout": 2.0}
    return cfg


async def test_services_list_explains_the_missing_manager(api):
    code, err = await api("GET", "services")
    assert code == 503
    assert "not reachable" in err["message"] and "Binder" in err["message"]
    assert "previewed" in err["message"]


async def test_preview_works_without_a_user_manager(api, root, conda_root):
    (root / "serve.py").write_text("print('hi')\n")
    code, preview = await api(
        "POST", "preview",
        body={"name": "draft", "kind": "script", "env": "ml", "path": "serve.py", "memory_max": "1G",
              "environment": {"API_KEY": "s3cret"}, "enabled": True},
    )
    assert code == 200, preview
    assert 'ExecStart=:"' in preview["unit"] and f'"{conda_root}/envs/ml/bin/python" "-u" "{root}/serve.py"' in preview["unit"]
    assert "WantedBy=default.target" in preview["unit"] and "s3cret" not in preview["unit"]
    assert preview["variables"] == ["API_KEY"]
    # scheduled drafts too: the calendar is checked without the manager
    code, preview = await api("POST", "preview", body={"name": "draft", "kind": "script", "env": "ml", "path": "serve.py", "schedule": "daily"})
    assert code == 200 and "OnCalendar=daily" in preview["timer"]


async def test_doctor_and_host_report_the_missing_manager(api):
    code, report = await api("GET", "doctor")
    assert code == 200 and report["ok"] is False
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["manager"]["ok"] is False and "Binder" in checks["manager"]["fix"]
    assert checks["cgroups"]["ok"] is None and checks["failed"]["ok"] is None
    code, host = await api("GET", "host")
    assert code == 200 and host["manager"]["reachable"] is False
