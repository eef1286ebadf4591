"""Live streams on the real stack: log follow (resume, filters, journald restart) and the status socket."""

from __future__ import annotations

import asyncio
import os
import shlex
import time

import pytest
from tornado.httpclient import HTTPClientError

from helpers import Stream, create, events, pushed, systemctl, wait_for

pytestmark = pytest.mark.systemd

TICKER = """\
import sys, time
i = 0
while True:
    print(f"tick {i}", flush=True)
    i += 1
    time.sleep(0.05)
"""


async def follow(jp_ws_fetch, name, **params):
    ws = await jp_ws_fetch("condasvc", "api", "services", name, "logs", "follow", params=params)
    stream = Stream(ws)
    hello = await stream.next()
    assert hello["type"] == "hello" and hello["name"] == name and hello["journal"]["ok"], hello
    return stream


def ticks(entries):
    out = []
    for e in entries:
        if e["source"] == "service" and e["message"].startswith("tick "):
            out.append(int(e["message"].split()[1]))
    return out


async def collect_ticks(stream, count, timeout=15.0):
    got, entries = [], []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        msg = await stream.next(max(0.05, deadline - time.monotonic()))
        assert msg["type"] == "entries", msg
        assert msg["cursor"] == msg["entries"][-1]["cursor"]
        entries += msg["entries"]
        got += ticks(msg["entries"])
    return got, entries


async def test_follow_new_lines_then_resume_by_cursor(api, root, jp_ws_fetch):
    await create(api, root, "tick", TICKER)
    stream = await follow(jp_ws_fetch, "tick")  # at the tail: nothing of "tick" yet
    code, _ = await api("POST", "services", "tick", "start")
    assert code == 200
    got, entries = await collect_ticks(stream, 8)
    assert got == list(range(len(got))), got  # every line, in order, from the first
    assert any(e["source"] == "manager" and e["message"].startswith("Started ") for e in entries)
    last = entries[-1]["cursor"]
    stream.close()

    await asyncio.sleep(0.6)  # lines land while nobody follows
    resumed = await follow(jp_ws_fetch, "tick", cursor=last)
    first = await resumed.next()
    assert first["type"] == "entries" and len(first["entries"]) > 1, "lines that arrived together come as one message"
    more, entries2 = await collect_ticks(resumed, 5)
    more = ticks(first["entries"]) + more
    assert more[0] == got[-1] + 1, (got[-3:], more[:3])  # no gap, no duplicate
    assert more == list(range(more[0], more[0] + len(more)))
    assert not {e["cursor"] for e in entries} & {e["cursor"] for e in first["entries"] + entries2}
    resumed.close()

    # a backlog of n entries before the tail, then live lines
    backlog = await follow(jp_ws_fetch, "tick", n="3")
    msg = await backlog.next()
    assert msg["type"] == "entries" and len(msg["entries"]) == 3
    backlog.close()
    await api("POST", "services", "tick", "stop")


async def test_follow_filters_and_bad_input(api, root, jp_ws_fetch):
    await create(
        api,
        root,
        "mixed",
        """\
import sys, time
i = 0
while True:
    sys.stdout.buffer.write(b"<3>bad news %d\\n<6>fine %d\\n<6>raw \\xff%d\\n" % (i, i, i))
    sys.stdout.flush()
    i += 1
    time.sleep(0.05)
""",
    )
    errs = await follow(jp_ws_fetch, "mixed", priority="err")
    raw = await follow(jp_ws_fetch, "mixed", text="RAW")  # capitals: case-sensitive, so "raw" lines do not match
    fine = await follow(jp_ws_fetch, "mixed", text=r"^fine [0-9]+$", regex="1")
    await api("POST", "services", "mixed", "start")
    msg = await errs.until(lambda m: len(m.get("entries", [])) > 0)
    assert all(e["priority"] <= 3 and e["message"].startswith("bad news") for e in msg["entries"]), msg
    msg = await fine.until(lambda m: len(m.get("entries", [])) > 0)
    assert all(e["message"].startswith("fine ") for e in msg["entries"])
    with pytest.raises(asyncio.TimeoutError):
        await raw.next(timeout=0.5)
    bytes_ = await follow(jp_ws_fetch, "mixed", text="raw \\xff")  # the escaped form is what is matched
    msg = await bytes_.until(lambda m: len(m.get("entries", [])) > 0)
    assert msg["entries"][0]["escaped"] is True and msg["entries"][0]["message"].startswith("raw \\xff")
    for s in (errs, raw, fine, bytes_):
        s.close()
    await api("POST", "services", "mixed", "stop")
    # refused before the upgrade, with the reason
    for params, code in (({"cursor": "nonsense"}, 400), ({"priority": "loud"}, 400)):
        with pytest.raises(HTTPClientError) as info:
            await jp_ws_fetch("condasvc", "api", "services", "mixed", "logs", "follow", params=params)
        assert info.value.code == code
    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch("condasvc", "api", "services", "nosuch", "logs", "follow")
    assert info.value.code == 404


async def test_follower_timer_runs_only_while_someone_follows(api, root, jp_ws_fetch, jp_serverapp):
    await create(api, root, "idle", TICKER)
    app = jp_serverapp.web_app.settings
    hub = app["condasvc_follow"]
    assert not hub.timer_running and not hub.followers
    stream = await follow(jp_ws_fetch, "idle")
    await wait_for(lambda: _async(hub.timer_running))
    stream.close()
    await wait_for(lambda: _async(not hub.followers and not hub.timer_running))
    status = app["condasvc_status"]
    assert status.timers_running == 0 and not status.clients


async def _async(value):
    return value


def _helper():
    helper = os.environ.get("CONDASVC_ROOT_HELPER")
    if not helper:
        pytest.skip(
            "restarting journald needs root: set CONDASVC_ROOT_HELPER to a command that, run as the test user, "
            "performs `journald-restart` as root (scripts/test provides it in root mode)"
        )
    return shlex.split(helper)


async def test_follow_survives_a_journald_restart(api, root, jp_ws_fetch):
    helper = _helper()
    await create(api, root, "survivor", TICKER)
    stream = await follow(jp_ws_fetch, "survivor")
    await api("POST", "services", "survivor", "start")
    before, entries = await collect_ticks(stream, 5)
    pid_before = entries[-1]["pid"]
    proc = await asyncio.create_subprocess_exec(*helper, "journald-restart")
    assert await asyncio.wait_for(proc.wait(), 60) == 0, "the root helper failed to restart journald"
    # Without PID 1 holding journald's sockets (these machines), the user manager's own log connection died with
    # the old journald and is never reopened: re-execute it so its lines ("Started ...") reach the new one and
    # later tests still see them. (On a real host this step is not needed.)
    systemctl("daemon-reexec", check=True)
    # the ticker's stdout went to the old journald (it dies of EPIPE, or is restarted by Restart= while journald
    # was down and so logs nowhere): a restart connects it to the new journald
    code, svc = await api("POST", "services", "survivor", "restart")
    assert code == 200, svc
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = await stream.next(timeout=max(0.1, deadline - time.monotonic()))
        if msg["type"] == "entries":
            seen += msg["entries"]
            if any(e["pid"] not in (pid_before, None) and e["source"] == "service" for e in seen):
                break
    new = [e for e in seen if e["source"] == "service" and e["pid"] != pid_before]
    assert new, "no line from the restarted service reached the follower after journald restarted"
    cursors = [e["cursor"] for e in entries + seen]
    assert len(cursors) == len(set(cursors)), "duplicates after the restart"
    assert [e["realtime_usec"] for e in entries + seen] == sorted(e["realtime_usec"] for e in entries + seen)
    stream.close()
    await api("POST", "services", "survivor", "stop")


# -- the status socket ----------------------------------------------------------


async def test_status_pushes_start_stop_crash_create_delete(api, root, jp_ws_fetch):
    await create(api, root, "steady", TICKER)
    stream, snap = await events(jp_ws_fetch)
    assert [s["name"] for s in snap["services"]] == ["steady"]
    assert snap["services"][0]["status"]["active_state"] == "inactive"

    await api("POST", "services", "steady", "start")
    msg = await stream.until(pushed("steady", "active"))
    assert msg["service"]["status"]["sub_state"] == "running" and msg["service"]["status"]["main_pid"]
    # the state came first as a quick "status" message, straight from systemd's signal
    assert any(
        m["type"] == "status" and m["name"] == "steady" and m["status"]["active_state"] == "active"
        for m in stream.messages
    )
    await stream.until(lambda m: m["type"] == "metrics" and "steady" in m["services"], timeout=10)
    await api("POST", "services", "steady", "stop")
    await stream.until(pushed("steady", "inactive"))

    # created through the API: pushed; then it crashes: pushed as failed
    await create(api, root, "crash", "import sys, time\ntime.sleep(0.3)\nsys.exit(4)\n", restart="no")
    await stream.until(lambda m: m["type"] == "service" and m["service"]["name"] == "crash")
    await api("POST", "services", "crash", "start")
    msg = await stream.until(pushed("crash", "failed"))
    assert msg["service"]["status"]["result"] == "exit-code" and msg["service"]["status"]["exec_main_status"] == 4

    # an edit through the API is pushed (the spec changed, no property did)
    code, _ = await api("PATCH", "services", "steady", body={"description": "now described"})
    assert code == 200
    await stream.until(lambda m: m["type"] == "service" and m["service"]["spec"].get("description") == "now described")

    code, _ = await api("DELETE", "services", "crash")
    assert code == 204
    await stream.until(lambda m: m == {"host": "local", "type": "removed", "name": "crash"})  # every message: its host

    # a second client gets the current state as its snapshot
    other, snap2 = await events(jp_ws_fetch)
    assert sorted(s["name"] for s in snap2["services"]) == ["steady"]
    other.close()
    stream.close()
