"""The host dimension without a host: the check of ``?host=``, the mirror's rows and views, ~/.ssh/config aliases.

Pure (no systemd, no ssh): tests/test_remote_api.py drives the same code through the REST API against a real sshd.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from types import SimpleNamespace

import pytest

from jupyter_condasvc.errors import InvalidSpec
from jupyter_condasvc.fleet import Fleet, FleetMirror
from jupyter_condasvc.remote import HostError, RemoteHost, RemoteHosts
from jupyter_condasvc.sshconfig import AliasCache, aliases, is_concrete, split_args


def fleet(*hosts: str, from_ssh: bool = False) -> Fleet:
    settings = SimpleNamespace(hosts=list(hosts), hosts_from_ssh_config=from_ssh)
    return Fleet(RemoteHosts(settings), local=None)  # type: ignore[arg-type]


def test_host_is_local_by_default_and_only_configured_hosts_pass():
    f = fleet("gpu2", "box")
    assert f.check(None) == f.check("") == f.check("local") == "local"
    assert f.check("gpu2") == "gpu2"
    assert f.check(None, allow_all=True) == f.check("all", allow_all=True) == "all"
    for bad in ("gpu3", "all", "-oProxyCommand=x", "GPU2"):
        with pytest.raises(InvalidSpec) as info:
            f.check(bad)
        assert info.value.field == "host" and "local, gpu2, box" in info.value.message, info.value.message
    with pytest.raises(InvalidSpec) as info:
        f.check("nowhere", allow_all=True)
    assert "local, gpu2, box, or all" in info.value.message
    assert f.target("local") is None  # the local target as given (None here): no remote client made
    assert f.remotes.hosts == {}


def test_mirror_rows_views_and_encoded_list_follow_its_messages():
    m = FleetMirror(RemoteHost("gpu2"))
    assert m.row() == {"name": "gpu2", "state": "connecting", "error": None} and m.services_json() == ""
    svc = {"name": "a", "host": "local", "status": {"active_state": "active"}}
    m.apply({"type": "snapshot", "services": [svc]})
    assert m.row()["state"] == "up"
    assert m.views() == [{**svc, "host": "gpu2", "stale": False}]
    first = m.services_json()
    assert '"host": "gpu2"' in first and m.services_json() is first  # not re-encoded while nothing changed
    err = HostError("gpu2 cannot be reached: Connection refused.", kind="unreachable", host="gpu2", fix="Retry.")
    m.apply({"type": "lost", "error": err})
    row = m.row()
    assert row["state"] == "down" and row["error"]["kind"] == "unreachable" and row["error"]["fix"] == "Retry."
    (view,) = m.views()
    assert view["stale"] is True and "Connection refused" in view["stale_reason"]
    assert m.services_json() != first


# -- ~/.ssh/config -----------------------------------------------------------------------------------------------
def test_split_args_quotes_and_comments():
    assert split_args('a "b c"  d # e f') == ["a", "b c", "d"]
    assert split_args("") == [] and split_args("#x") == []
    assert [n for n in ("gpu2", "*.lab", "gpu?", "!bastion", "") if is_concrete(n)] == ["gpu2"]


def test_aliases_keep_concrete_hosts_and_follow_includes():
    files = {
        "/h/.ssh/conf.d/a.conf": "Host included1 *.wild\n  User x\n",
        "/h/.ssh/conf.d/b.conf": "host=included2\nInclude loop.conf\n",
        "/h/.ssh/loop.conf": "Include loop.conf\nHost deep\n",
        "/etc/abs.conf": 'Host "quoted name" absolute\n',
    }
    text = textwrap.dedent("""\
        # my hosts
        Host gpu2 gpu3 !gpu4 gpu*
            HostName 10.0.0.2
        Host *
            ServerAliveInterval 5
        Match host gpu5
            User y
        HOST Gpu2 gpu2
        Include conf.d/*.conf /etc/abs.conf missing.conf
    """)
    got = aliases(
        text,
        ssh_dir="/h/.ssh",
        read=files.get,
        expand=lambda pattern: sorted(p for p in files if __import__("fnmatch").fnmatch(p, pattern)),
    )
    # pattern and negation out; each once, in order; includes relative to ~/.ssh, globbed, nested (and a loop ends)
    assert got == ["gpu2", "gpu3", "Gpu2", "included1", "included2", "deep", "absolute"]


def test_alias_cache_rereads_only_when_a_file_changed(tmp_path):
    conf = tmp_path / "config"
    conf.write_text("Host one\n")
    cache = AliasCache(str(conf))
    assert cache.aliases() == ["one"] and cache.aliases() == ["one"] and cache.reads == 1
    conf.write_text("Host one two\n")
    os.utime(conf, ns=(1, 1))  # another mtime whatever the clock's resolution
    assert cache.aliases() == ["one", "two"] and cache.reads == 2
    assert AliasCache(str(tmp_path / "absent")).aliases() == []


def test_hosts_from_ssh_config_adds_aliases_after_the_listed_hosts(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host box gpu2 local\nHost *\nInclude ~/.ssh/more\n")
    (tmp_path / ".ssh" / "more").write_text("Host more\n")
    # ssh reads the home of the password database, not $HOME: so does the product (seen here through that one seam)
    monkeypatch.setattr("jupyter_condasvc.sshconfig.home", lambda: str(tmp_path))
    monkeypatch.setenv("HOME", "/nonexistent")
    assert fleet("gpu2").names() == ["local", "gpu2"]
    f = fleet("gpu2", from_ssh=True)
    assert f.names() == ["local", "gpu2", "box", "more"]
    assert f.check("box") == "box"


# -- the status socket's merge -------------------------------------------------------------------------------
class _LocalHub:
    """What FleetEvents uses of the local StatusHub (connect: a client started with a snapshot; disconnect),
    without a user manager: the merge is what is tested here (the real hub: tests/test_remote_api.py)."""

    def __init__(self, first=None) -> None:
        from jupyter_condasvc.status import StatusClient

        self.make = lambda send: StatusClient(send, 1 << 20)
        self.clients: list = []
        self.first = first or {"type": "snapshot", "services": [{"name": "l", "host": "local"}]}

    async def connect(self, send):
        client = self.make(send)
        self.clients.append(client)
        client.start(json.dumps(self.first))
        return client

    def disconnect(self, client) -> None:
        self.clients.remove(client)


def _no_duplicate_keys(text: str):
    def pairs(items):
        keys = [k for k, _ in items]
        assert len(keys) == len(set(keys)), f"duplicate keys in {text}"
        return dict(items)

    return json.loads(text, object_pairs_hook=pairs)


def test_status_socket_merges_every_host_with_its_name():
    from jupyter_condasvc.fleet import FleetEvents

    async def run():
        f = fleet("gpu2")
        m = f.mirrors["gpu2"] = FleetMirror(RemoteHost("gpu2"))  # not started: no ssh here
        m.listeners.append(f._on_mirror)
        svc = {"name": "a", "host": "local", "status": {"active_state": "active"}}
        m.apply({"type": "snapshot", "services": [svc]})
        hub, got = _LocalHub(), []
        ev = FleetEvents(hub, f)  # type: ignore[arg-type]
        client = await ev.connect(lambda text: got.append(_no_duplicate_keys(text)))
        snap = got.pop(0)
        assert snap["type"] == "snapshot"
        assert [(s["host"], s["name"]) for s in snap["services"]] == [("local", "l"), ("gpu2", "a")]
        assert [h["name"] for h in snap["hosts"]] == ["local", "gpu2"] and snap["hosts"][1]["state"] == "up"

        client.write(json.dumps({"type": "status", "name": "l", "status": {}}))  # a local push
        assert got.pop(0)["host"] == "local"
        m.apply({"type": "status", "name": "a", "status": {"active_state": "deactivating"}})
        msg = got.pop(0)
        assert (msg["type"], msg["host"], msg["name"]) == ("status", "gpu2", "a")

        err = HostError("gpu2 cannot be reached.", kind="unreachable", host="gpu2", fix="Retry.")
        m.apply({"type": "lost", "error": err})
        stale, host = got.pop(0), got.pop(0)
        assert stale["type"] == "service" and stale["host"] == "gpu2" and stale["service"]["stale"] is True
        assert host == {"host": {"name": "gpu2", "state": "down", "error": err.to_json()}, "type": "host"}
        m.apply({"type": "lost", "error": err})  # the next failed redial: nothing new to say
        assert got == []

        m.apply({"type": "snapshot", "services": [{**svc, "name": "b"}]})  # back: "a" was deleted meanwhile
        kinds = [(x["type"], x.get("name") or x.get("service", {}).get("name") or x["host"]["state"]) for x in got]
        assert kinds == [("removed", "a"), ("service", "b"), ("host", "up")], got
        assert got[1]["service"]["stale"] is False and all(
            x["host"] == "gpu2" or x["host"]["name"] == "gpu2" for x in got
        )
        ev.disconnect(client)
        got.clear()
        m.apply({"type": "removed", "name": "b"})
        assert got == [] and hub.clients == []

    asyncio.run(run())


def test_status_socket_shows_other_hosts_while_this_manager_is_out_of_reach():
    from jupyter_condasvc.fleet import FleetEvents

    async def run():
        f = fleet("gpu2")
        m = f.mirrors["gpu2"] = FleetMirror(RemoteHost("gpu2"))
        m.apply({"type": "snapshot", "services": [{"name": "a", "status": {}}]})
        hub, got = _LocalHub({"type": "manager", "reachable": False, "message": "no bus"}), []
        await FleetEvents(hub, f).connect(lambda text: got.append(_no_duplicate_keys(text)))  # type: ignore[arg-type]
        assert [(x["type"], x["host"]) for x in got] == [
            ("manager", "local"),
            ("service", "gpu2"),
            ("host", {"name": "gpu2", "state": "up", "error": None}),
        ]

    asyncio.run(run())
