"""Hostile input, round two (issue 16): each finding as a class, on the real stack.

* spoofed log lines: entries are classified by the fields journald records,
  and one another process wrote about a service is marked untrusted.
* regex cost: log filters run on RE2 (linear time); a catastrophic pattern
  answers at once, an RE2-unsupported one is a 400 naming ``text``.
* resource caps: many follow sockets share one inotify instance; the cap
  answers a clear error.
"""
from __future__ import annotations

import asyncio
import ctypes
import json
import os

import pytest

from conftest import create, wait_for


# -- resource caps (finding 3) -------------------------------------------------

def _inotify_fds():
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify":
                n += 1
        except OSError:
            pass
    return n


def _can_inotify():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(0)
    if fd < 0:
        return False
    os.close(fd)
    return True


@pytest.fixture
def many_followers_config(jp_server_config):
    jp_server_config["CondaSvcApp"]["follow_max_followers"] = 140
    return jp_server_config


async def test_many_followers_share_one_inotify_instance(many_followers_config, api, root, jp_ws_fetch):
    await create(api, root, "crowd", "print('hi', flush=True)\n", restart="no")
    before = _inotify_fds()
    sockets = []
    try:
        # more sockets than a user has inotify instances (fs.inotify.max_user_instances is 128 by default)
        for _ in range(135):
            ws = await jp_ws_fetch("condasvc", "api", "services", "crowd", "logs", "follow")
            hello = json.loads(await asyncio.wait_for(ws.read_message(), 10))
            assert hello["type"] == "hello", hello
            sockets.append(ws)
        assert _inotify_fds() - before <= 1, "one journal watch for all followers"
        assert _can_inotify(), "the user's other programs still get inotify"
        proc = await asyncio.create_subprocess_exec(
            "python3", "-c", "import ctypes,sys; sys.exit(ctypes.CDLL(None).inotify_init1(0) < 0)")
        assert await proc.wait() == 0, "another process of this user cannot get an inotify instance"
        # every follower still gets lines
        await api("POST", "services", "crowd", "start")
        for ws in (sockets[0], sockets[-1]):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.read_message(), 15))
                if msg["type"] == "entries" and any(e["message"] == "hi" for e in msg["entries"]):
                    break
        # the cap (140): the 141st is told why and closed
        while len(sockets) < 140:
            sockets.append(await jp_ws_fetch("condasvc", "api", "services", "crowd", "logs", "follow"))
        ws = await jp_ws_fetch("condasvc", "api", "services", "crowd", "logs", "follow")
        sockets.append(ws)
        msgs = []
        while True:
            text = await asyncio.wait_for(ws.read_message(), 10)
            if text is None:
                break
            msgs.append(json.loads(text))
        assert msgs[-1]["type"] == "error" and "follow_max_followers" in msgs[-1]["message"], msgs
    finally:
        for ws in sockets:
            ws.close()
        await api("DELETE", "services", "crowd")
    await wait_for(lambda: _async(_inotify_fds() <= before), timeout=10)  # released with the last follower


async def _async(value):
    return value


# -- spoofed log lines (finding 8) ---------------------------------------------

async def test_spoofed_manager_lines_and_markers_are_marked_untrusted(api, root, unit_name, jp_ws_fetch):
    from systemd import journal as sdjournal

    from jupyter_condasvc.journal import MESSAGE_ID_DROPPED

    await create(api, root, "victim", "print('real line', flush=True)\n", restart="no")
    await api("POST", "services", "victim", "start")
    unit = unit_name("victim")
    # any process of the user can name a unit and a MESSAGE_ID
    sdjournal.send("Started spoofed by a neighbour.", USER_UNIT=unit, SYSLOG_IDENTIFIER="systemd")
    sdjournal.send("Suppressed 999 messages", USER_UNIT=unit, MESSAGE_ID=MESSAGE_ID_DROPPED, N_DROPPED="999",
                   OBJECT_SYSTEMD_UNIT=f"user@{os.getuid()}.service")

    async def page():
        code, body = await api("GET", "services", "victim", "logs", n="100")
        messages = [e["message"] for e in body["entries"]]
        return ("real line" in messages and any("spoofed" in m for m in messages)
                and any("999" in m for m in messages) and body["entries"])

    entries = await wait_for(page, timeout=20)
    spoofed = [e for e in entries if "spoofed" in e["message"] or "999" in e["message"]]
    assert len(spoofed) == 2
    for e in spoofed:
        assert e.get("untrusted") is True and e["source"] == "service" and "marker" not in e, e
    real = [e for e in entries if e["message"] == "real line"]
    assert real and not real[0].get("untrusted") and real[0]["source"] == "service"
    manager = [e for e in entries if e["source"] == "manager"]
    assert manager and not any(e.get("untrusted") for e in manager), entries
    assert any(e["message"].startswith("Started ") for e in manager)
    # the follow socket classifies with the same code
    ws = await jp_ws_fetch("condasvc", "api", "services", "victim", "logs", "follow", params={"n": "100"})
    json.loads(await asyncio.wait_for(ws.read_message(), 10))
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    followed = [e for e in msg["entries"] if "spoofed" in e["message"] or "999" in e["message"]]
    assert followed and all(e.get("untrusted") and "marker" not in e for e in followed), msg
    ws.close()
    await api("DELETE", "services", "victim")


# -- regex cost (finding 2) ----------------------------------------------------

async def test_catastrophic_regex_answers_at_once_and_unsupported_is_400(api, root, jp_ws_fetch):
    # 40 A's: a backtracking engine would need ~2**40 steps for (A+)+B; the test would time out
    line = "A" * 40
    await create(api, root, "redos", f"print({line!r} * 1, flush=True)\nprint('AAB', flush=True)\n", restart="no")
    await api("POST", "services", "redos", "start")

    async def logged():
        code, page = await api("GET", "services", "redos", "logs", n="50")
        return code == 200 and any(e["message"] == "AAB" for e in page["entries"]) and page

    await wait_for(logged, timeout=20)
    code, page = await api("GET", "services", "redos", "logs", text="(A+)+B", regex="1", n="50")
    assert code == 200, page
    assert [e["message"] for e in page["entries"] if e["source"] == "service"] == ["AAB"]
    # the follow socket takes the same filter through the same matcher
    ws = await jp_ws_fetch("condasvc", "api", "services", "redos", "logs", "follow",
                           params={"text": "(A+)+B", "regex": "1", "n": "50"})
    hello = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert hello["type"] == "hello"
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert [e["message"] for e in msg["entries"] if e["source"] == "service"] == ["AAB"], msg
    ws.close()
    for pattern in (r"(a)\1", "(?=a)b", "(unclosed"):
        code, body = await api("GET", "services", "redos", "logs", text=pattern, regex="1")
        assert code == 400 and body["field"] == "text", body
    code, body = await api("GET", "services", "redos", "logs", text="x" * 1001)
    assert code == 400 and body["field"] == "text", body
    # a literal search with regex characters is a substring search
    code, page = await api("GET", "services", "redos", "logs", text="(A+)+B", n="50")
    assert code == 200 and page["entries"] == []
    await api("DELETE", "services", "redos")
