"""Log history through the API, against the real journald; and the journal diagnosis on fake paths."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import SYSTEMCTL_ENV, stopped, wait_for
from jupyter_condasvc import journal as J  # noqa: N812  (J.name reads as the module)
from jupyter_condasvc.doctor import diagnose
from jupyter_condasvc.errors import InvalidSpec

LOGGER = r"""
import sys, time
out = sys.stdout.buffer
out.write(b"<3>error line one\n")
out.write(b"<4>warning line two\n")
out.write(b"<6>info line three\n")
out.write(b"hello WORLD\n")
out.write(b"bad \xff\xfe bytes \xc3(\n")
out.write(b"\x1b[31mred\x1b[0m and tab\there\n")
out.write(b"DONE-MARK\n")
out.flush()
"""


async def _logged_service(api, root, name, text=LOGGER):
    (root / f"{name}.py").write_text(text)
    code, svc = await api(
        "POST", "services", body={"name": name, "kind": "script", "env": "ml", "path": f"{name}.py", "restart": "no"}
    )
    assert code == 201, svc
    code, svc = await api("POST", "services", name, "start")
    assert code in (200, 409), svc  # a quick exit may race the job result; the log is what matters
    return svc


async def _has(api, name, needle, **params):
    code, page = await api("GET", "services", name, "logs", **params)
    assert code == 200, page
    return page if any(needle in e["message"] for e in page["entries"]) else None


@pytest.mark.systemd
async def test_history_entries_filters_and_escaping(api, root, unit_name):
    await _logged_service(api, root, "hist")
    await wait_for(lambda: _has(api, "hist", "DONE-MARK"), timeout=30)
    await wait_for(lambda: stopped(api, "hist"), timeout=30)
    await asyncio.sleep(0.5)  # the manager's last lines about the stop
    code, page = await api("GET", "services", "hist", "logs")
    unit = unit_name("hist")
    assert page["unit"] == unit and page["name"] == "hist"
    assert page["journal"]["ok"] is True, page["journal"]
    messages = [e["message"] for e in page["entries"]]
    # oldest first, the service's own lines with their priority, and the manager's lines about it
    i = messages.index("error line one")
    assert messages[i : i + 4] == ["error line one", "warning line two", "info line three", "hello WORLD"]
    by_msg = {e["message"]: e for e in page["entries"]}
    assert by_msg["error line one"]["priority"] == 3 and by_msg["warning line two"]["priority"] == 4
    e = by_msg["error line one"]
    assert e["source"] == "service" and e["pid"] > 0 and e["cursor"].startswith("s=")
    assert e["realtime"].endswith("+00:00") and abs(e["realtime_usec"] / 1e6 - time.time()) < 120
    assert any(m.startswith("Started ") for m in messages), messages  # USER_UNIT= lines of the user manager
    assert all(e["source"] == "manager" for e in page["entries"] if e["message"].startswith("Started "))
    # invalid UTF-8 comes back escaped, flagged, and never breaks the page
    bad = [e for e in page["entries"] if e["message"].startswith("bad ")]
    assert bad and bad[0]["message"] == "bad \\xff\\xfe bytes \\xc3(" and bad[0]["escaped"] is True
    assert "\x1b[31mred\x1b[0m and tab\there" in messages
    assert "escaped" not in by_msg["hello WORLD"]

    # priority: warning and more severe (a name, a number, a range)
    for prio in ("warning", "4", "emerg..warning"):
        code, p = await api("GET", "services", "hist", "logs", priority=prio)
        assert code == 200 and [x["message"] for x in p["entries"]] == ["error line one", "warning line two"], (prio, p)
    code, p = await api("GET", "services", "hist", "logs", priority="info..info")
    assert "error line one" not in [x["message"] for x in p["entries"]] and "info line three" in [
        x["message"] for x in p["entries"]
    ]
    # text: substring, smart case; regex
    code, p = await api("GET", "services", "hist", "logs", text="world")
    assert [x["message"] for x in p["entries"]] == ["hello WORLD"]
    code, p = await api("GET", "services", "hist", "logs", text="World")
    assert p["entries"] == []
    code, p = await api("GET", "services", "hist", "logs", text=r"^(error|warning) line", regex="1")
    assert [x["message"] for x in p["entries"]] == ["error line one", "warning line two"]
    # since / until: a window that holds nothing, and one that holds everything
    code, p = await api("GET", "services", "hist", "logs", since=str(time.time() + 3600))
    assert code == 200 and p["entries"] == []
    first = page["entries"][0]["realtime"]
    code, p = await api("GET", "services", "hist", "logs", since=first, until="-0s")
    assert [x["message"] for x in p["entries"]] == messages
    code, p = await api("GET", "services", "hist", "logs", boot="this", n="3")
    assert [x["message"] for x in p["entries"]] == messages[-3:] and p["more_before"] is True
    # paging by cursor: before= the first of the last three, then after= it again
    code, older = await api("GET", "services", "hist", "logs", n="2", before=p["first_cursor"])
    assert [x["message"] for x in older["entries"]] == messages[-5:-3]
    code, newer = await api("GET", "services", "hist", "logs", n="100", after=older["last_cursor"])
    assert [x["message"] for x in newer["entries"]] == messages[-3:]
    # the same lines as journalctl shows
    jc = subprocess.run(
        ["journalctl", "--user", "-u", unit, "-o", "cat", "--no-pager"],
        capture_output=True,
        env=SYSTEMCTL_ENV,
        timeout=60,
    ).stdout.decode("utf-8", "backslashreplace")
    assert "bad \\xff\\xfe bytes \\xc3(" in jc  # journalctl shows the same bytes
    for line in ("error line one", "hello WORLD", "DONE-MARK"):
        assert line in jc


@pytest.mark.systemd
async def test_history_download_and_errors(api, root, jp_fetch):
    await _logged_service(api, root, "dl", "print('download me', flush=True)\n")
    await wait_for(lambda: _has(api, "dl", "download me"), timeout=30)
    resp = await jp_fetch("condasvc", "api", "services", "dl", "logs", params={"format": "text"})
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert 'filename="dl.log"' in resp.headers["Content-Disposition"]
    assert ": download me\n" in resp.body.decode()
    for params, field in (
        ({"priority": "loud"}, "priority"),
        ({"since": "yesterday-ish"}, "since"),
        ({"n": "many"}, "n"),
        ({"n": "999999"}, "n"),
        ({"before": "nonsense"}, "cursor"),
        ({"text": "(", "regex": "1"}, "text"),
        ({"boot": "previous"}, "boot"),
        ({"before": "s=1", "after": "s=2"}, "before"),
    ):
        code, err = await api("GET", "services", "dl", "logs", **params)
        assert code == 400, (params, code, err)
        assert err.get("field") == field, (params, err)
    code, err = await api("GET", "services", "nosuch", "logs")
    assert code == 404


# -- pure parts ----------------------------------------------------------------


def test_parse_priority_and_time():
    assert J.parse_priority("err") == (0, 3) and J.parse_priority("7") == (0, 7)
    assert J.parse_priority("warning..crit") == (2, 4) and J.parse_priority(None) is None
    assert J.parse_time("1700000000.5", "since") == 1_700_000_000_500_000
    assert J.parse_time("2023-11-14T22:13:20Z", "since") == 1_700_000_000_000_000
    assert J.parse_time("2023-11-14T23:13:20+01:00", "since") == 1_700_000_000_000_000
    assert abs(J.parse_time("-1h", "since") / 1e6 - (time.time() - 3600)) < 5
    with pytest.raises(InvalidSpec):
        J.parse_time("noon", "until")
    assert J.parse_boot("all") is None and len(J.parse_boot("this")) == 32
    match = J.text_matcher("abc")
    assert match("xxABCxx") and not J.text_matcher("Abc")("abc")


class FakeReader:
    """Only what read_entry uses: _get, _get_realtime, _get_cursor."""

    def __init__(self, fields, usec=1795748897042078, cursor="s=1;i=2"):
        self.fields = {k: v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()}
        self.usec, self.cursor = usec, cursor

    def _get(self, key):
        return self.fields[key]

    def _get_all(self):
        return dict(self.fields)

    def _get_realtime(self):
        return self.usec

    def _get_cursor(self):
        return self.cursor


def test_suppressed_marker_from_a_real_journald_note():
    # the fields journald 252 wrote on this machine after a flood ("journalctl -o json MESSAGE_ID=a596...")
    fields = {
        "MESSAGE": "Suppressed 2521 messages from user@1001.service",
        "MESSAGE_ID": J.MESSAGE_ID_DROPPED,
        "N_DROPPED": "2521",
        "OBJECT_SYSTEMD_UNIT": "user@1001.service",
        "OBJECT_SYSTEMD_USER_UNIT": "init.scope",
        "OBJECT_UID": "1001",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "systemd-journald",
        "_PID": "15013",
        "_UID": "0",
        "_TRANSPORT": "driver",
    }
    e = J.read_entry(FakeReader(fields), "app.service")
    assert e["source"] == "journald"
    assert e["marker"] == {"kind": "suppressed", "count": 2521, "scope": "user@1001.service"}
    assert "2521" in e["message"] and e["realtime"] == "2026-11-27T03:08:17.042078+00:00"


def test_read_entry_survives_odd_fields():
    e = J.read_entry(
        FakeReader({"MESSAGE": b"\xff\x00\x01", "_SYSTEMD_USER_UNIT": "a.service", "PRIORITY": "x"}), "a.service"
    )
    assert e["message"] == "\\xff\x00\x01" and e["escaped"] and e["priority"] is None and e["pid"] is None
    e = J.read_entry(FakeReader({"_SYSTEMD_USER_UNIT": "a.service"}), "a.service")
    assert e["message"] == "" and e["source"] == "service"


class WalkReader:
    """A reader over a list of cursors (oldest first) that moves as sd-journal does: after seek_cursor the next
    step either way lands ON that entry (or where it would be); after seek_tail/seek_head, beside the end."""

    def __init__(self, cursors):
        self.cursors, self.pos, self.mode = list(cursors), 0, "gap"

    def seek_cursor(self, cursor):
        if not cursor.startswith("s="):
            raise ValueError(cursor)
        self.pos = self.cursors.index(cursor) if cursor in self.cursors else len(self.cursors)
        self.mode = "at"

    def seek_tail(self):
        self.pos, self.mode = len(self.cursors), "gap"

    def _step(self, d):
        if self.mode == "at":
            target = self.pos
        elif self.mode == "gap":
            target = self.pos if d > 0 else self.pos - 1
        else:
            target = self.pos + d
        if not 0 <= target < len(self.cursors):
            return False
        self.pos, self.mode = target, "on"
        return True

    def _next(self):
        return self._step(1)

    def _previous(self):
        return self._step(-1)

    def test_cursor(self, cursor):
        return self.cursors[self.pos] == cursor

    def _get_realtime(self):
        return 1000 + self.pos


def test_walk_skips_the_cursor_it_seeks_and_resumes_after_catching_up():
    r = WalkReader(["s=a", "s=b", "s=c"])
    steps = J.walk(r, "s=a")
    assert [next(steps), next(steps), next(steps)] == [1001, 1002, None]  # s=a itself is passed over
    r.cursors.append("s=d")  # a new entry: the same walk goes on, no duplicate
    assert [next(steps), next(steps)] == [1003, None]
    back = J.walk(r, "s=c", backward=True)
    assert [next(back), next(back), next(back)] == [1001, 1000, None]
    r.seek_tail()
    assert next(J.walk(r, backward=True)) == 1003  # no cursor: from where the reader stands
    # a cursor whose entry is not there yet is still skipped when it arrives after the walk caught up
    r = WalkReader(["s=a"])
    steps = J.walk(r, "s=e")
    assert next(steps) is None
    r.cursors += ["s=e", "s=f"]
    assert [next(steps), next(steps)] == [1002, None]
    with pytest.raises(InvalidSpec) as err:
        J.walk(WalkReader(["s=a"]), "nonsense")  # refused at once, before any step
    assert err.value.field == "cursor"


def _fake_host(tmp_path: Path, *, persistent=True, user_file=True, conf="", uid=4242, runtime=False, flushed=True):
    """A journald host in files: runtime=True leaves the runtime folder that journald removes after its flush."""
    mid = "0123456789abcdef0123456789abcdef"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "machine-id").write_text(mid + "\n")
    pers, run = tmp_path / "var-log-journal", tmp_path / "run-log-journal"
    run.mkdir()
    if runtime or not persistent:
        (run / mid).mkdir(parents=True)
        (run / mid / "system.journal").write_bytes(b"")
        os.chmod(run / mid / "system.journal", 0)
    if persistent:
        (pers / mid).mkdir(parents=True)
        if user_file:
            (pers / mid / f"user-{uid}.journal").write_bytes(b"")
    if flushed:
        (tmp_path / "flushed").touch()
    (tmp_path / "journald.conf").write_text(conf)
    return dict(
        uid=uid,
        persistent_root=pers,
        runtime_root=run,
        machine_id_file=tmp_path / "machine-id",
        conf=tmp_path / "journald.conf",
        conf_dirs=[tmp_path / "conf.d"],
        flushed_flag=tmp_path / "flushed",
    )


def test_diagnosis_volatile_journal(tmp_path):
    d = diagnose(**_fake_host(tmp_path, persistent=False))
    assert d["ok"] is False and d["storage"] == "volatile" and d["state"] == "volatile"
    assert d["problems"][0]["code"] == "volatile" and "/var/log/journal" in d["fix"]
    # the fake system journal is mode 0: unreadable, except to root (the suite runs unprivileged; the pure tests
    # may run as root)
    if os.geteuid() == 0:
        assert d["rate_limit"]["markers_visible"] is True
    else:
        assert d["rate_limit"]["markers_visible"] is False and d["notes"]


def test_diagnosis_storage_settings(tmp_path):
    d = diagnose(**_fake_host(tmp_path, conf="[Journal]\nStorage=volatile\nRateLimitBurst=500\n"))
    assert d["storage"] == "volatile" and not d["ok"] and d["rate_limit"]["burst"] == "500"
    d = diagnose(**_fake_host(tmp_path / "b", conf="[Journal]\nStorage=none\n"))
    assert d["problems"][0]["code"] == "storage-none"
    d = diagnose(**_fake_host(tmp_path / "c", conf="[Journal]\nSplitMode=none\n"))
    assert d["problems"][0]["code"] == "split-none"
    d = diagnose(**_fake_host(tmp_path / "e"))
    assert d["ok"] is True and d["storage"] == "persistent" and d["user_journal_readable"] is True
    assert d["state"] == "ok" and d["path"] == d["user_journal"]


def test_diagnosis_fresh_install_is_no_logs_yet_not_an_alarm(tmp_path):
    """Before any service has logged there is no user-UID.journal: that is "no logs yet", not "not readable"."""
    d = diagnose(**_fake_host(tmp_path, user_file=False))
    assert d["ok"] is True and d["state"] == "no-logs-yet" and d["fix"] is None and not d["problems"]
    assert d["path"].endswith("user-4242.journal") and "No logs yet" in d["message"] and d["path"] in d["message"]


def test_diagnosis_journald_stuck_on_its_runtime_journal(tmp_path):
    """Fact 3a: /run not a tmpfs, journald flushed but could not remove its runtime journal and keeps writing it."""
    d = diagnose(**_fake_host(tmp_path, user_file=False, runtime=True))
    assert d["ok"] is False and d["state"] == "runtime-journal" and d["storage"] == "persistent"
    run = tmp_path / "run-log-journal" / "0123456789abcdef0123456789abcdef"
    assert d["path"] == str(run) and str(run) in d["message"] and "tmpfs" in d["message"]
    # the fix names both repairs that work: drop the runtime file and the flushed flag, flush; a tmpfs for next time
    assert f"rm {run}/*.journal {tmp_path / 'flushed'} && journalctl --flush" in d["fix"]
    assert "mount -t tmpfs" in d["fix"]
    # an older user file next to it does not hide the problem (journald no longer writes it)
    d = diagnose(**_fake_host(tmp_path / "b", user_file=True, runtime=True))
    assert d["state"] == "runtime-journal" and not d["ok"]


def test_diagnosis_not_flushed_yet(tmp_path):
    d = diagnose(**_fake_host(tmp_path, user_file=False, runtime=True, flushed=False))
    assert d["ok"] is False and d["state"] == "not-flushed" and "journalctl --flush" in d["fix"]


def test_diagnosis_unreadable_user_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    kw = _fake_host(tmp_path)
    user_file = Path(diagnose(**kw)["user_journal"])
    os.chmod(user_file, 0)
    d = diagnose(**kw)
    assert d["ok"] is False and d["state"] == "unreadable" and str(user_file) in d["message"]
    assert "setfacl" in d["fix"]


def test_diagnosis_of_this_host():
    d = diagnose()
    # the suite runs on persistent storage (scripts/systemd-stack), where a user reads their own file
    assert d["storage"] == "persistent" and d["ok"], d


async def test_a_slow_follower_is_told_what_was_dropped():
    """Past max_pending unsent bytes, entries are dropped and counted; once the client catches up it is told."""
    hub = J.FollowHub(max_pending=1000)
    futures, sent = [], []

    def send(text):
        fut = asyncio.get_running_loop().create_future()
        futures.append(fut)
        sent.append(json.loads(text))
        return fut

    follower = hub.follow("condasvc-no-such-unit.service", os.getuid(), send)
    try:
        assert hub.timer_running
        for i in range(1, 6):
            follower._deliver([{"cursor": f"c{i}", "message": "x" * 600}])
        assert [m["cursor"] for m in sent] == ["c1", "c2"] and follower.dropped == 3
        for fut in futures:
            fut.set_result(None)
        await asyncio.sleep(0)
        assert sent[-1]["type"] == "dropped"
        assert (sent[-1]["count"], sent[-1]["after"], sent[-1]["until"]) == (3, "c2", "c5")
        assert hub.total_dropped == 3 and follower.pending_bytes < 1000
    finally:
        hub.remove(follower)
    assert not hub.timer_running and not hub.followers


def _stdout_entries(ident: str) -> list:
    """The stdout entries of this user with SYSLOG_IDENTIFIER=IDENT, as journalctl reads them (every field)."""
    out = subprocess.run(
        ["journalctl", "-q", "-o", "json", "--no-pager", f"SYSLOG_IDENTIFIER={ident}", f"_UID={os.getuid()}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [e for e in map(json.loads, out.splitlines()) if e.get("_TRANSPORT") == "stdout"]


@pytest.mark.systemd
async def test_a_crashs_last_lines_stay_in_its_log_when_journald_lost_their_unit(api, root, jp_ws_fetch):
    """journald reading late (here: stopped for 2 s) stores a gone process's stdout with no unit at all; the
    service's log still has it, found by its SyslogIdentifier and _UID and kept because it has no cgroup."""
    import shlex

    from helpers import Stream, create, status_in

    helper = os.environ.get("CONDASVC_ROOT_HELPER")
    if not helper:
        pytest.skip("pausing journald needs root: scripts/test provides CONDASVC_ROOT_HELPER in root mode")
    name = "lost-unit"
    words = f"Traceback: the last words {os.getpid()}-{time.time_ns()}"  # this run's line, not an earlier run's
    text = f"import sys\nprint({words!r}, flush=True)\nsys.exit(3)\n"
    await create(api, root, name, text, restart="no")
    ws = Stream(await jp_ws_fetch("condasvc", "api", "services", name, "logs", "follow"))
    try:
        assert (await ws.next(30))["type"] == "hello"
        proc = await asyncio.create_subprocess_exec(*shlex.split(helper), "journald-pause")
        assert await asyncio.wait_for(proc.wait(), 30) == 0, "the root helper could not pause journald"
        await api("POST", "services", name, "start")  # its line waits in the stream while journald sleeps
        assert await wait_for(lambda: status_in(api, name, "failed"), timeout=30)
        lines = await wait_for(
            lambda: asyncio.to_thread(lambda: [e for e in _stdout_entries(name) if e["MESSAGE"] == words]),
            timeout=30,
        )
        # the condition this test is about: journald stored the line without its unit
        assert all("_SYSTEMD_USER_UNIT" not in e and "_SYSTEMD_CGROUP" not in e for e in lines), lines
        page = await wait_for(lambda: _has(api, name, words), timeout=30)
        [entry] = [e for e in page["entries"] if e["message"] == words]
        assert entry["source"] == "service" and not entry.get("untrusted"), entry
        got = await ws.until(
            lambda m: m["type"] == "entries" and any(e["message"] == words for e in m["entries"]), timeout=30
        )
        assert got
    finally:
        ws.close()


@pytest.mark.systemd
async def test_another_units_stdout_with_the_same_identifier_is_not_in_the_log(api, root, jp_ws_fetch):
    from helpers import SYSTEMCTL_ENV, Stream, create

    name = "same-ident"
    await create(api, root, name, "import time\nprint('mine', flush=True)\ntime.sleep(60)\n")
    await api("POST", "services", name, "start")
    assert await wait_for(lambda: _has(api, name, "mine"), timeout=30)
    impostor = f"impostor-{os.getpid()}-{int(time.time())}"
    subprocess.run(
        [
            *("systemd-run", "--user", "-q", f"--unit={impostor}", "-p", f"SyslogIdentifier={name}"),
            *("/bin/sh", "-c", "echo impostor line; sleep 1"),
        ],
        env=SYSTEMCTL_ENV,
        check=True,
        timeout=30,
    )
    await wait_for(
        lambda: asyncio.to_thread(lambda: any(e["MESSAGE"] == "impostor line" for e in _stdout_entries(name))),
        timeout=30,
    )
    code, page = await api("GET", "services", name, "logs", n="100")
    assert code == 200 and "mine" in [e["message"] for e in page["entries"]]
    assert "impostor line" not in [e["message"] for e in page["entries"]], page["entries"]
    ws = Stream(await jp_ws_fetch("condasvc", "api", "services", name, "logs", "follow", params={"n": "100"}))
    try:
        assert (await ws.next(30))["type"] == "hello"
        backlog = await ws.until(lambda m: m["type"] == "entries", timeout=30)
        assert "mine" in [e["message"] for e in backlog["entries"]]
        assert "impostor line" not in [e["message"] for e in backlog["entries"]]
    finally:
        ws.close()
