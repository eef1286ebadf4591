"""Hostile input, round two (issue 16): each finding as a class, on the real stack.

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
