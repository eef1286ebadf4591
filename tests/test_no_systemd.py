"""Binder-like hosts: no systemd user manager at all. The API says so and still previews units."""

from __future__ import annotations

import pytest

from helpers import preview_script

#: These tests make the manager unreachable themselves, so they run with or without one.
pytestmark = pytest.mark.no_user_manager


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
    code, preview = await preview_script(
        api, "serve.py", memory_max="1G", environment={"API_KEY": "s3cret"}, enabled=True
    )
    assert code == 200, preview
    assert (
        'ExecStart=:"' in preview["unit"]
        and f'"{conda_root}/envs/ml/bin/python" "-u" "{root}/serve.py"' in preview["unit"]
    )
    assert "WantedBy=default.target" in preview["unit"] and "s3cret" not in preview["unit"]
    assert preview["variables"] == ["API_KEY"]
    # scheduled drafts too: the calendar is checked without the manager
    code, preview = await api(
        "POST",
        "preview",
        body={"name": "draft", "kind": "script", "env": "ml", "path": "serve.py", "schedule": "daily"},
    )
    assert code == 200 and "OnCalendar=daily" in preview["timer"]


async def test_doctor_and_host_report_the_missing_manager(api):
    code, report = await api("GET", "doctor")
    assert code == 200 and report["ok"] is False
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["manager"]["ok"] is False and "Binder" in checks["manager"]["fix"]
    assert checks["cgroups"]["ok"] is None and checks["failed"]["ok"] is None
    code, host = await api("GET", "host")
    assert code == 200 and host["manager"]["reachable"] is False


async def test_the_503_leads_with_the_address_and_where_it_came_from(api, tmp_path):
    code, err = await api("GET", "services")
    assert code == 503
    # the real cause first: the address this server was given, and from where
    assert err["message"].startswith(
        f"The systemd user manager is not reachable at unix:path={tmp_path}/no-bus-here "
        "(from c.SystemdManager.bus_address): "
    )
    assert "template" not in err["message"]


class TestTemplatedRuntimeDir:
    """JupyterHub passes c.Spawner.environment values verbatim: {"XDG_RUNTIME_DIR": "/run/user/{uid}"} arrives as is."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config, monkeypatch):
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
        monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/{uid}")
        cfg = dict(jp_server_config)
        cfg["SystemdManager"] = {"call_timeout": 2.0}
        return cfg

    async def test_the_message_names_the_unexpanded_template(self, api):
        code, err = await api("GET", "services")
        assert code == 503
        assert err["message"].startswith(
            "The systemd user manager is not reachable at unix:path=/run/user/{uid}/bus (from $XDG_RUNTIME_DIR): "
        )
        assert "unexpanded template" in err["message"] and "callable" in err["message"]
