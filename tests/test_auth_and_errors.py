"""Every endpoint demands authentication; an unreachable manager is a 503, not a crash."""

from __future__ import annotations

import json
import re

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketHandler, websocket_connect

from jupyter_condasvc.handlers import default_handlers


def _concrete(pattern: str) -> str:
    path = re.sub(r"\(\?P<name>[^)]*\)\)?", "svc", pattern)
    path = re.sub(r"\(\?P<action>[^)]*\)", "start", path)
    path = re.sub(r"\(\?P<run_id>[^)]*\)", "0" * 32, path)
    return path.replace("\\", "")


ROUTES = [_concrete(p) for p, _ in default_handlers]
WS_ROUTES = [_concrete(p) for p, h in default_handlers if issubclass(h, WebSocketHandler)]
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


def test_routes_are_concrete():
    assert all("(" not in r for r in ROUTES), ROUTES
    assert "/condasvc/api/services/svc/start" in ROUTES


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("method", METHODS)
async def test_no_endpoint_answers_without_auth(http_server_client, jp_base_url, jp_serverapp, route, method):
    url = jp_base_url.rstrip("/") + route
    body = json.dumps({"name": "x"}) if method in ("POST", "PATCH", "PUT") else None
    with pytest.raises(HTTPClientError) as info:
        await http_server_client.fetch(url, method=method, body=body, allow_nonstandard_methods=True)
    assert info.value.code in (401, 403, 405), (method, route, info.value.code)


def test_websocket_routes_are_known():
    assert WS_ROUTES == ["/condasvc/api/services/svc/logs/follow", "/condasvc/api/events"]


@pytest.mark.parametrize("route", WS_ROUTES)
async def test_websockets_refuse_unauthenticated_clients(
    http_server_client, jp_http_port, jp_base_url, jp_serverapp, route
):
    url = f"ws://localhost:{jp_http_port}{jp_base_url.rstrip('/')}{route}"
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(url)
    assert info.value.code == 403
    with pytest.raises(HTTPClientError) as info:  # a wrong token is no better
        await websocket_connect(url + "?token=wrong")
    assert info.value.code == 403


async def test_websockets_refuse_foreign_origins(http_server_client, jp_http_port, jp_base_url, jp_serverapp):
    """A browser session (cookie, not token) from another site is refused; from the server's own origin it is let in."""
    base = jp_base_url.rstrip("/")
    resp = await http_server_client.fetch(f"{base}/api/status?token={jp_serverapp.identity_provider.token}")
    cookies = "; ".join(c.split(";", 1)[0] for c in resp.headers.get_list("Set-Cookie"))
    assert cookies, "no login cookie"
    url = f"ws://127.0.0.1:{jp_http_port}{base}/condasvc/api/events"  # the host the cookie was issued for
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(url, headers={"Cookie": cookies, "Origin": "http://evil.example"}))
    assert info.value.code == 403
    ws = await websocket_connect(
        HTTPRequest(url, headers={"Cookie": cookies, "Origin": f"http://127.0.0.1:{jp_http_port}"})
    )
    assert json.loads(await ws.read_message())["type"] == "snapshot"
    ws.close()


async def test_xsrf_enforced_for_cookie_sessions(http_server_client, jp_base_url, jp_serverapp):
    """A browser session (cookie, no token) must present the XSRF token on POST."""
    with pytest.raises(HTTPClientError) as info:
        await http_server_client.fetch(
            jp_base_url.rstrip("/") + "/condasvc/api/services",
            method="POST",
            body="{}",
            headers={"Cookie": "_xsrf=abc"},
        )
    assert info.value.code == 403


class TestManagerUnreachable:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, tmp_path):
        cfg = dict(jp_server_config)
        cfg["SystemdManager"] = {"bus_address": f"unix:path={tmp_path}/no-bus-here", "call_timeout": 2.0}
        return cfg

    async def test_every_systemd_endpoint_says_503(self, api, root):
        (root / "a.py").write_text("print(1)\n")
        for method, path, body in (
            ("GET", ("services",), None),
            ("POST", ("services",), {"name": "x", "kind": "script", "env": "ml", "path": "a.py"}),
        ):
            code, err = await api(method, *path, body=body)
            assert code == 503, (method, path, code, err)
            assert "not reachable" in err["message"]
        code, host = await api("GET", "host")
        assert code == 200 and host["manager"]["reachable"] is False and "not reachable" in host["manager"]["error"]
        # the server keeps serving what does not need systemd
        code, envs = await api("GET", "environments")
        assert code == 200 and envs["environments"]
