"""Another host through the REST API and the sockets (issue 15): the server routes ``?host=`` to the host's bridge.

The server here is configured with the test host (``CondaSvcApp.hosts``), exactly as a user would: nothing is
mocked; ssh, sshd, the remote account's user manager and journal are the real ones (``scripts/sshd-stack``,
set up by ``scripts/test`` in root mode; without it these tests skip, like tests/test_remote.py, whose fixtures
and helpers they reuse).
"""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from helpers import Stream, create, events, wait_for
from test_remote import (  # noqa: F401 - remote_home and _no_leftovers_between_tests are fixtures used here
    BRIDGE,
    HOST,
    PYTHON,
    RPREFIX,
    _helper,
    _helper_do,
    _no_leftovers_between_tests,
    env_prefix,
    put,
    remote_home,
)

pytestmark = [pytest.mark.systemd, pytest.mark.usefixtures("remote_home")]


@pytest.fixture
def jp_server_config(jp_server_config, request):
    """The server knows the test host (its ~/.ssh/config alias, made by scripts/sshd-stack) and its bridge: listed
    in CondaSvcApp.hosts, or (parametrized "ssh_config") only through hosts_from_ssh_config."""
    if HOST and PYTHON:
        if getattr(request, "param", None) == "ssh_config":
            jp_server_config["CondaSvcApp"].update(hosts_from_ssh_config=True, host_bridge_command=BRIDGE)
        else:
            jp_server_config["CondaSvcApp"].update(hosts=[HOST], host_bridge_command=BRIDGE)
    return jp_server_config


def remote_spec(name: str, path: str, **extra):
    return {"name": name, "kind": "script", "env": env_prefix(), "path": path, **extra}


async def listed(api, **params):
    code, data = await api("GET", "services", **params)
    assert code == 200, data
    return data


def by_host(data):
    return {(s["host"], s["name"]): s for s in data["services"]}


def row(data, host):
    (found,) = [h for h in data["hosts"] if h["name"] == host]
    return found


def about(name, host):
    """A status-socket predicate: a message about service NAME of HOST (service, status or removed)."""

    def match(msg):
        if msg.get("host") != host:
            return False
        if msg["type"] == "service":
            return msg["service"]["name"] == name and msg["service"]["host"] == host
        return msg["type"] in ("status", "removed") and msg.get("name") == name

    return match


def state(msg):
    if msg["type"] == "service":
        return msg["service"]["status"]["active_state"]
    if msg["type"] == "status":
        return msg["status"]["active_state"]
    return msg["type"]


async def test_local_and_remote_services_together_through_the_api(api, root, jp_ws_fetch):
    name = f"{RPREFIX}api"
    path = put(
        "api.py",
        "import time\nprint('hello from the other host', flush=True)\nprint('bye', flush=True)\ntime.sleep(600)\n",
    )
    await create(api, root, "here", "import time\ntime.sleep(600)\n")
    status, snap = await events(jp_ws_fetch)
    try:
        assert {h["name"] for h in snap["hosts"]} == {"local", HOST}
        assert all(s["host"] == "local" for s in snap["services"] if s["name"] == "here")

        code, svc = await api("POST", "services", body=remote_spec(name, path), host=HOST)
        assert code == 201 and svc["host"] == HOST and svc["name"] == name, svc
        code, svc = await api("POST", "services", name, "start", host=HOST)
        assert code == 200 and svc["host"] == HOST and svc["status"]["active_state"] == "active", svc
        # the remote start is pushed through the status socket, with its host
        await status.until(lambda m: about(name, HOST)(m) and state(m) == "active", timeout=60)

        # one list: the local service and the remote one, each with its host, the remote one fresh
        async def both():
            data = await listed(api)
            found = by_host(data)
            return data if ("local", "here") in found and (HOST, name) in found else None

        data = await wait_for(both, timeout=60)
        remote = by_host(data)[(HOST, name)]
        assert remote["stale"] is False and remote["status"]["active_state"] == "active"
        assert row(data, HOST) == {"name": HOST, "state": "up", "error": None}
        assert row(data, "local")["state"] == "up"
        # one host at a time
        only_local = await listed(api, host="local")
        assert {s["host"] for s in only_local["services"]} == {"local"} and [
            h["name"] for h in only_local["hosts"]
        ] == ["local"]
        only_remote = await listed(api, host=HOST)
        assert [s["name"] for s in only_remote["services"] if s["name"] == name] == [name]
        assert {s["host"] for s in only_remote["services"]} == {HOST}

        # the service itself, its unit and its log, there
        code, one = await api("GET", "services", name, host=HOST)
        assert code == 200 and one["host"] == HOST and one["unit"].startswith(name)
        code, unit = await api("GET", "services", name, "unit", host=HOST)
        assert code == 200 and "ExecStart=" in unit["unit"]
        code, local_unit = await api("GET", "services", name, "unit")
        assert code == 404, "the same name is not a local service"

        async def logged():
            code, page = await api("GET", "services", name, "logs", host=HOST, n="50")
            assert code == 200, page
            said = [e["message"] for e in page["entries"]]
            return page if "hello from the other host" in said and "bye" in said else None

        page = await wait_for(logged, timeout=60)

        # the live follow through the bridge, resumed after a cursor like a local one
        ws = Stream(
            await jp_ws_fetch("condasvc", "api", "services", name, "logs", "follow", params={"host": HOST, "n": "10"})
        )
        hello = await ws.next(60)
        assert hello["type"] == "hello" and hello["host"] == HOST and hello["unit"] == one["unit"]
        entries = await ws.until(lambda m: m["type"] == "entries", timeout=60)
        assert any("hello from the other host" in e["message"] for e in entries["entries"])
        ws.close()
        after = Stream(
            await jp_ws_fetch(
                "condasvc",
                "api",
                "services",
                name,
                "logs",
                "follow",
                params={"host": HOST, "cursor": page["entries"][0]["cursor"]},
            )
        )
        assert (await after.next(60))["type"] == "hello"
        resumed = await after.until(lambda m: m["type"] == "entries", timeout=60)
        assert resumed["entries"][0]["cursor"] != page["entries"][0]["cursor"], "resumed after the cursor, not at it"
        assert [e["cursor"] for e in resumed["entries"]] == [e["cursor"] for e in page["entries"][1:]][
            : len(resumed["entries"])
        ]
        after.close()
        # filtered on that host as a local follow is: a regex and this (remote) boot
        filtered = Stream(
            await jp_ws_fetch(
                "condasvc",
                "api",
                "services",
                name,
                "logs",
                "follow",
                params={"host": HOST, "n": "10", "text": "^b.e$", "regex": "1", "boot": "this"},
            )
        )
        assert (await filtered.next(60))["type"] == "hello"
        only = await filtered.until(lambda m: m["type"] == "entries", timeout=60)
        assert [e["message"] for e in only["entries"]] == ["bye"], only
        filtered.close()

        code, svc = await api("POST", "services", name, "stop", host=HOST)
        assert code == 200 and svc["status"]["active_state"] in ("inactive", "failed")
        code, _ = await api("DELETE", "services", name, host=HOST)
        assert code == 204
        await status.until(lambda m: about(name, HOST)(m) and m["type"] == "removed", timeout=60)
        code, err = await api("GET", "services", name, host=HOST)
        assert code == 404 and err["host"] == HOST, err

        async def gone():
            return (HOST, name) not in by_host(await listed(api))

        await wait_for(gone, timeout=60)
        assert ("local", "here") in by_host(await listed(api))
    finally:
        status.close()


async def test_the_combined_list_has_one_etag(jp_fetch):
    """The answer's ETag covers every host's part: asked again unchanged, it is a 304."""

    async def fetch(**headers):
        return await jp_fetch("condasvc", "api", "services", headers=headers, raise_error=False)

    async def connected():
        resp = await fetch()
        data = json.loads(resp.body)
        return resp if row(data, HOST)["state"] == "up" else None

    first = await wait_for(connected, timeout=60)
    for _ in range(20):  # a metrics push may land between two requests: then the tag rightly changes
        again = await fetch(**{"If-None-Match": first.headers["ETag"]})
        if again.code == 304:
            break
        first = await fetch()
    assert again.code == 304 and again.headers["ETag"] == first.headers["ETag"]
    local_only = await fetch()
    assert json.loads(local_only.body)["hosts"][0] == {"name": "local", "state": "up", "error": None}


async def test_an_unknown_host_is_a_400_naming_the_configured_hosts(api, jp_ws_fetch):
    for method, path, params in (
        ("GET", ("services",), {"host": "elsewhere"}),
        ("GET", ("services", "x"), {"host": "elsewhere"}),
        ("POST", ("services", "x", "start"), {"host": "elsewhere"}),
        ("GET", ("services", "x", "logs"), {"host": "elsewhere"}),
        ("GET", ("services", "x", "runs"), {"host": "elsewhere"}),
        ("GET", ("environments",), {"host": "-oProxyCommand=touch /tmp/x"}),
        ("POST", ("preview",), {"host": "all"}),
    ):
        body = {"name": "x", "kind": "script", "env": "ml", "path": "x.py"} if path == ("preview",) else None
        code, err = await api(method, *path, body=body, **params)
        assert code == 400 and err["field"] == "host", (path, err)
        assert f"local, {HOST}" in err["message"], err["message"]
    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch("condasvc", "api", "services", "x", "logs", "follow", params={"host": "elsewhere"})
    assert info.value.code == 400


async def test_host_down_lists_its_services_stale_and_back_fresh_without_duplicates(api, root, jp_ws_fetch):
    helper = _helper()
    name = f"{RPREFIX}outage"
    path = put("outage.py", "import time\ntime.sleep(600)\n")
    await create(api, root, "steady", "import time\ntime.sleep(600)\n")
    code, _ = await api("POST", "services", body=remote_spec(name, path), host=HOST)
    assert code == 201
    status, _snap = await events(jp_ws_fetch)
    try:

        async def fresh():
            data = await listed(api)
            svc = by_host(data).get((HOST, name))
            return data if svc is not None and not svc["stale"] else None

        await wait_for(fresh, timeout=60)
        await _helper_do(helper, "sshd-stop")
        try:
            # the host's services stay, as last known, marked stale with the reason; local ones are unaffected
            async def stale():
                data = await listed(api)
                svc = by_host(data).get((HOST, name))
                return data if svc is not None and svc["stale"] else None

            data = await wait_for(stale, timeout=90)
            svc = by_host(data)[(HOST, name)]
            assert svc["stale_reason"] and HOST in svc["stale_reason"], svc
            down = row(data, HOST)
            assert down["state"] == "down" and down["error"]["kind"] == "unreachable" and down["error"]["fix"]
            assert not by_host(data)[("local", "steady")].get("stale")
            assert row(data, "local") == {"name": "local", "state": "up", "error": None}
            code, local_one = await api("GET", "services", "steady")
            assert code == 200 and local_one["host"] == "local"
            # a request to the host says why it cannot be served, with the fix
            code, err = await api("GET", "services", name, host=HOST)
            assert code == 503 and err["kind"] == "unreachable" and err["host"] == HOST, err
            # the socket said so too: the host's state, and its services again, stale (not removed)
            await status.until(
                lambda m: m["type"] == "host" and m["host"]["name"] == HOST and m["host"]["state"] == "down"
            )
            await status.until(lambda m: about(name, HOST)(m) and m["type"] == "service" and m["service"]["stale"])
        finally:
            await _helper_do(helper, "sshd-start")

        data = await wait_for(fresh, timeout=120)
        assert [k for k in by_host(data) if k == (HOST, name)] == [(HOST, name)]
        assert len([s for s in data["services"] if s["name"] == name]) == 1, "listed twice after the reconnect"
        assert row(data, HOST) == {"name": HOST, "state": "up", "error": None}
        await status.until(lambda m: m["type"] == "host" and m["host"]["name"] == HOST and m["host"]["state"] == "up")
        assert not any(m["type"] == "removed" and m.get("name") == name for m in status.messages), "removed meanwhile"
        code, _ = await api("DELETE", "services", name, host=HOST)
        assert code == 204
    finally:
        status.close()


@pytest.mark.parametrize("jp_server_config", ["ssh_config"], indirect=True)
async def test_hosts_from_ssh_config_are_managed_like_listed_ones(api):
    """No CondaSvcApp.hosts: the test user's ~/.ssh/config alias (written by scripts/sshd-stack) is a host."""

    async def up():
        data = await listed(api)
        return data if row(data, HOST)["state"] == "up" else None

    data = await wait_for(up, timeout=60)
    assert [h["name"] for h in data["hosts"]] == ["local", HOST]
    code, hosts = await api("GET", "hosts")
    assert code == 200 and HOST in [h["name"] for h in hosts["hosts"]]
    code, err = await api("GET", "services", host="condasvc-nowhere")
    assert code == 400 and err["field"] == "host" and HOST in err["message"]
