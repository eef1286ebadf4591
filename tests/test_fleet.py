"""The host dimension without a host: the check of ``?host=``, the mirror's rows and views, ~/.ssh/config aliases.

Pure (no systemd, no ssh): tests/test_remote_api.py drives the same code through the REST API against a real sshd.
"""

from __future__ import annotations

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
    (tmp_path / ".ssh" / "config").write_text("Host box gpu2 local\nHost *\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert fleet("gpu2").names() == ["local", "gpu2"]
    f = fleet("gpu2", from_ssh=True)
    assert f.names() == ["local", "gpu2", "box"]
    assert f.check("box") == "box"
