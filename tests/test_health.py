"""Health checks: the pure helpers, the real prober process, and a real unit restarted by its watchdog.

The prober tests run ``python -m jupyter_condasvc.health`` as a real
subprocess (it forks into the background like it does under
``ExecStartPost=``) against a real HTTP server or TCP listener started here,
with a real AF_UNIX datagram socket as ``$NOTIFY_SOCKET``.  The last test
hands the same command to the real user manager and watches it restart a
service whose health breaks.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

import jupyter_condasvc
from helpers import PREFIX, SYSTEMCTL_ENV, free_port, journal, systemctl
from jupyter_condasvc.errors import InvalidSpec
from jupyter_condasvc.health import health_environment, parse_args, prober_argv, validate_check, watchdog_sec

#: The directory that holds the package, for the prober's PYTHONPATH.
PACKAGE_ROOT = str(Path(jupyter_condasvc.__file__).resolve().parent.parent)


# --------------------------------------------------------------------------
# validate_check, watchdog_sec, prober_argv


def test_validate_check_fills_defaults():
    assert validate_check({"type": "http", "url": "http://127.0.0.1:8000/health"}) == {
        "type": "http",
        "url": "http://127.0.0.1:8000/health",
        "host": None,
        "port": None,
        "interval_sec": 10.0,
        "timeout_sec": 3.0,
        "start_period_sec": 30.0,
        "failure_threshold": 3,
    }
    assert validate_check({"type": "tcp", "host": "h", "port": 1, "interval_sec": 2})["timeout_sec"] == 2.0
    assert validate_check(
        {
            "type": "tcp",
            "host": "[::1]",
            "port": 5432,
            "interval_sec": 1,
            "timeout_sec": 1,
            "start_period_sec": 0,
            "failure_threshold": 1,
            "url": None,
        }
    ) == {
        "type": "tcp",
        "url": None,
        "host": "::1",
        "port": 5432,
        "interval_sec": 1.0,
        "timeout_sec": 1.0,
        "start_period_sec": 0.0,
        "failure_threshold": 1,
    }


@pytest.mark.parametrize(
    "data, words",
    [
        ("http://x/", "must be an object"),
        ({"url": "http://x/"}, "type must be"),
        ({"type": "udp", "host": "x", "port": 1}, "type must be"),
        ({"type": "http"}, "needs 'url'"),
        ({"type": "http", "url": "ftp://host/"}, "http:// or https://"),
        ({"type": "http", "url": "http:///path"}, "must name a host"),
        ({"type": "http", "url": "http://host:99999/"}, "not a valid URL"),
        ({"type": "http", "url": "http://host/a b"}, "without white space"),
        ({"type": "http", "url": "http://h/", "port": 80}, "'url' only"),
        ({"type": "tcp", "port": 80}, "needs 'host'"),
        ({"type": "tcp", "host": "h"}, "port must be"),
        ({"type": "tcp", "host": "h", "port": 0}, "port must be"),
        ({"type": "tcp", "host": "h", "port": 65536}, "port must be"),
        ({"type": "tcp", "host": "h", "port": True}, "port must be"),
        ({"type": "tcp", "host": "h", "port": "80"}, "port must be"),
        ({"type": "tcp", "host": "a b", "port": 80}, "host name or IP"),
        ({"type": "tcp", "host": "h:1", "port": 80}, "host name or IP"),
        ({"type": "tcp", "host": "h", "port": 1, "url": "http://h/"}, "'url' is for http"),
        ({"type": "tcp", "host": "h", "port": 1, "interval_sec": 0}, "interval_sec must be greater than 0"),
        ({"type": "tcp", "host": "h", "port": 1, "timeout_sec": -1}, "timeout_sec must be greater than 0"),
        ({"type": "tcp", "host": "h", "port": 1, "timeout_sec": "3"}, "number of seconds"),
        ({"type": "tcp", "host": "h", "port": 1, "timeout_sec": float("nan")}, "number of seconds"),
        ({"type": "tcp", "host": "h", "port": 1, "interval_sec": 2, "timeout_sec": 3}, "must not exceed interval_sec"),
        ({"type": "tcp", "host": "h", "port": 1, "start_period_sec": -1}, "start_period_sec must be at least 0"),
        ({"type": "tcp", "host": "h", "port": 1, "failure_threshold": 0}, "failure_threshold"),
        ({"type": "tcp", "host": "h", "port": 1, "failure_threshold": 101}, "failure_threshold"),
        ({"type": "tcp", "host": "h", "port": 1, "failure_threshold": 2.5}, "failure_threshold"),
        ({"type": "tcp", "host": "h", "port": 1, "retries": 3}, "unknown field(s) retries"),
    ],
)
def test_validate_check_rejects(data, words):
    with pytest.raises(InvalidSpec) as info:
        validate_check(data)
    assert info.value.field == "health_check"
    assert words in info.value.message


def test_watchdog_sec_outlasts_every_gap_between_pings():
    assert watchdog_sec(10, 3, 30, 3) == 43.0  # 10*3 + 3 + max(2, 10)
    assert watchdog_sec(0.2, 0.1, 0, 3) == 2.7  # 0.2*3 + 0.1 + 2
    for interval, timeout, start, threshold in [(1, 1, 0, 1), (60, 59, 600, 100), (0.1, 0.1, 5, 1)]:
        w = watchdog_sec(interval, timeout, start, threshold)
        # a healthy prober pings at most interval + timeout apart ...
        assert w >= interval + timeout + 2
        # ... and a failing one asks for the restart itself before the watchdog would fire
        assert w >= interval * threshold + timeout + 2


def test_prober_argv_round_trips_through_the_command_line():
    http = validate_check({"type": "http", "url": "https://u:p@example.org:8443/h?x=1", "interval_sec": 2.5})
    argv = prober_argv("/srv/py/bin/python", "api", "/state/api.health.json", http, status=True)
    assert argv == [
        "/srv/py/bin/python",
        "-m",
        "jupyter_condasvc.health",
        "--name",
        "api",
        "--state-file",
        "/state/api.health.json",
        "--http-env",
        "CONDASVC_HEALTH_URL",
        "--interval",
        "2.5",
        "--timeout",
        "2.5",
        "--start-period",
        "30",
        "--failure-threshold",
        "3",
        "--status",
    ]
    assert "u:p" not in " ".join(argv)  # credentials never on a command line
    os.environ.update(health_environment(http))
    try:
        args, check = parse_args(argv[3:])
    finally:
        del os.environ["CONDASVC_HEALTH_URL"]
    assert check == http and args.status and args.name == "api"

    tcp = validate_check({"type": "tcp", "host": "::1", "port": 5432, "timeout_sec": 0.25, "failure_threshold": 7})
    argv = prober_argv("py", "db", "/s.json", tcp, status=False)
    assert argv[argv.index("--tcp") + 1] == "[::1]:5432" and "--status" not in argv
    assert parse_args(argv[3:])[1] == tcp


# --------------------------------------------------------------------------
# The real prober process


class FlipServer:
    """A real HTTP server on 127.0.0.1 whose answer code can be changed."""

    def __init__(self) -> None:
        self.code = 200
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(owner.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FlipServer()
    yield s
    s.close()


class NotifySocket:
    """A real sd_notify endpoint: an AF_UNIX datagram socket, as systemd binds one."""

    def __init__(self, address: str, bind_to) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.messages: list = []  # (monotonic time, text)

    def wait_for(self, predicate, timeout: float = 5.0):
        """Collect datagrams until one satisfies ``predicate``; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching sd_notify message within {timeout} s; got {self.messages!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            text = data.decode()
            self.messages.append((time.monotonic(), text))
            if predicate(text):
                return text

    def drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
        except BlockingIOError:
            pass


@pytest.fixture
def notify_socket():
    # a short directory: AF_UNIX paths are limited to 107 bytes
    d = tempfile.mkdtemp(prefix="hc-")
    path = os.path.join(d, "notify")
    ns = NotifySocket(path, path)
    yield ns
    ns.sock.close()
    os.unlink(path)
    os.rmdir(d)


def _alive(pid: int) -> bool:
    """The prober is not our child (it is detached): read its state from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def _wait_gone(pid: int, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while _alive(pid):
        if time.monotonic() - start > timeout:
            raise AssertionError(f"prober {pid} still running after {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


class Probers:
    """Starts ``python -m jupyter_condasvc.health`` the way ExecStartPost= does; kills leftovers."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.pids: list = []

    def start(self, *args: str, notify: NotifySocket = None, env: Optional[dict] = None, name: str = "svc"):
        state = self.tmp_path / f"{name}.health.json"
        log = self.tmp_path / f"{name}.log"
        full_env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "MAINPID")}
        full_env["PYTHONPATH"] = PACKAGE_ROOT
        if notify is not None:
            full_env["NOTIFY_SOCKET"] = notify.address
        full_env.update(env or {})
        argv = [sys.executable, "-m", "jupyter_condasvc.health", "--name", name, "--state-file", str(state), *args]
        started = time.monotonic()
        with open(log, "wb") as out:
            # stdout/stderr to a file, as to the journal: the detached prober keeps writing there
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env)
        rc = proc.wait(timeout=10)
        run = Run(proc.pid, rc, time.monotonic() - started, state, log)
        if rc == 0:
            run.pid = self._prober_pid(run)
            self.pids.append(run.pid)
        return run

    @staticmethod
    def _prober_pid(run) -> int:
        deadline = time.monotonic() + 5
        while not run.state_file.exists():
            assert time.monotonic() < deadline, f"no state file; log: {run.log_text()}"
            time.sleep(0.02)
        return run.state()["pid"]

    def cleanup(self) -> None:
        for pid in self.pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class Run:
    def __init__(self, command_pid, rc, seconds, state_file, log_file) -> None:
        self.command_pid, self.rc, self.seconds = command_pid, rc, seconds
        self.state_file, self.log_file = state_file, log_file
        self.pid = None

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def log_text(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def wait_state(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            data = self.state()
            if predicate(data):
                return data
            assert time.monotonic() < deadline, f"state file never matched; last {data!r}"
            time.sleep(0.02)


@pytest.fixture
def probers(tmp_path):
    p = Probers(tmp_path)
    yield p
    p.cleanup()


def timing(interval: str = "0.2", timeout: str = "0.15", start_period: str = "0", threshold: str = "3") -> tuple:
    """The prober's timing arguments; the defaults are quick enough for a test."""
    return (
        "--interval",
        interval,
        "--timeout",
        timeout,
        "--start-period",
        start_period,
        "--failure-threshold",
        threshold,
    )


FAST = timing()


def test_http_prober_detaches_pings_while_healthy_and_triggers_the_watchdog_when_unhealthy(
    server, notify_socket, probers
):
    run = probers.start("--http", server.url, *FAST, "--status", notify=notify_socket)
    # ExecStartPost= returns at once; the prober is another process that keeps running
    assert run.rc == 0 and run.seconds < 1.0, (run.rc, run.seconds, run.log_text())
    assert run.pid != run.command_pid and _alive(run.pid)

    for _ in range(3):
        text = notify_socket.wait_for(lambda m: m.startswith("WATCHDOG=1"))
    assert "\nSTATUS=healthy (" in text and text.endswith(" ms)")
    state = run.wait_state(lambda s: s["state"] == "healthy")
    assert state["consecutive_failures"] == 0 and state["last_error"] is None
    assert state["latency_ms"] >= 0 and state["last_ok"] and state["last_probe"] and state["pid"] == run.pid
    assert _alive(run.pid)

    server.code = 500
    flipped = time.monotonic()
    trigger = notify_socket.wait_for(lambda m: m.startswith("WATCHDOG=trigger"))
    took = time.monotonic() - flipped
    # three failures 0.2 s apart; no ping while failing
    assert 0.3 < took < 2.0, took
    # from the first failure on: the failure counts in STATUS=, and no ping
    texts = [m for _, m in notify_socket.messages]
    first_failure = texts.index(f"STATUS=unhealthy: HTTP 500 from {server.url} (1/3)")
    assert texts[first_failure:] == [
        f"STATUS=unhealthy: HTTP 500 from {server.url} (1/3)",
        f"STATUS=unhealthy: HTTP 500 from {server.url} (2/3)",
        trigger,
    ]
    assert f"STATUS=unhealthy: HTTP 500 from {server.url}; restarting" in trigger

    _wait_gone(run.pid)
    state = run.state()
    assert state["state"] == "unhealthy" and state["consecutive_failures"] == 3
    assert state["last_error"] == f"HTTP 500 from {server.url}"
    lines = run.log_text().splitlines()
    assert lines == [
        f"<6>service is healthy: {server.url} answered in {lines[0].rsplit(' ', 2)[1]} ms",
        f"<4>health check failing (1/3 before a restart): HTTP 500 from {server.url}",
        f"<3>health check failed 3 times in a row (last: HTTP 500 from {server.url}); "
        "asking systemd to restart the service",
    ]


def test_failures_in_the_start_period_do_not_count_but_still_ping(server, notify_socket, probers):
    server.code = 503
    run = probers.start("--http", server.url, *timing(start_period="1", threshold="2"), notify=notify_socket)
    assert run.rc == 0
    started = time.monotonic()
    notify_socket.wait_for(lambda m: m == "WATCHDOG=1")
    state = run.wait_state(lambda s: s["last_error"] is not None)
    assert state["state"] == "starting" and state["consecutive_failures"] == 0
    assert state["last_error"] == f"HTTP 503 from {server.url}" and state["last_ok"] is None

    notify_socket.wait_for(lambda m: m == "WATCHDOG=trigger", timeout=5)
    assert time.monotonic() - started >= 1.0  # the start period, then two counted failures
    pings = [m for _, m in notify_socket.messages if m == "WATCHDOG=1"]
    assert len(pings) >= 3  # one per probe in the start period, whatever the result
    _wait_gone(run.pid)
    log = run.log_text()
    assert log.startswith("<6>waiting for the service to become healthy (start period 1 s): HTTP 503")
    assert log.count("<6>waiting") == 1 and "<3>health check failed 2 times in a row" in log


def test_a_success_ends_the_start_period(server, notify_socket, probers):
    run = probers.start("--http", server.url, *timing(start_period="60", threshold="1"), notify=notify_socket)
    run.wait_state(lambda s: s["state"] == "healthy")
    server.code = 404
    notify_socket.wait_for(lambda m: m == "WATCHDOG=trigger", timeout=3)
    _wait_gone(run.pid)


def test_recovery_is_logged_once_and_resets_the_count(server, notify_socket, probers):
    run = probers.start("--http", server.url, *FAST[:-1], "100", notify=notify_socket)
    run.wait_state(lambda s: s["state"] == "healthy")
    server.code = 500
    run.wait_state(lambda s: s["consecutive_failures"] >= 2)
    server.code = 302  # 3xx counts as healthy; redirects are not followed
    state = run.wait_state(lambda s: s["state"] == "healthy")
    assert state["consecutive_failures"] == 0 and state["last_error"].startswith("HTTP 500")
    lines = run.log_text().splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<6>"], lines
    assert lines[2].startswith("<6>health check passes again after ")


def test_tcp_prober_against_a_listener_and_a_closed_port(notify_socket, probers):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        run = probers.start("--tcp", f"127.0.0.1:{port}", *FAST, "--status", notify=notify_socket, name="up")
        assert run.rc == 0
        notify_socket.wait_for(lambda m: m.startswith("WATCHDOG=1\nSTATUS=healthy ("))
        assert run.wait_state(lambda s: s["state"] == "healthy")["latency_ms"] is not None
    finally:
        listener.close()
    # the same port, now closed: refused three times, then the restart request
    notify_socket.wait_for(lambda m: m.startswith("WATCHDOG=trigger"))
    _wait_gone(run.pid)
    state = run.state()
    assert state["state"] == "unhealthy" and state["last_error"] == f"127.0.0.1:{port}: connection refused"


def test_a_service_that_accepts_but_never_answers_times_out(notify_socket, probers):
    # a listening socket nobody accept()s on: the kernel completes the connect, no HTTP answer ever comes
    mute = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{mute.getsockname()[1]}/"
    try:
        run = probers.start("--http", url, *timing("0.3", "0.2", threshold="1"), notify=notify_socket)
        notify_socket.wait_for(lambda m: m == "WATCHDOG=trigger")
        _wait_gone(run.pid)
    finally:
        mute.close()
    assert run.state()["last_error"] == f"no HTTP answer from {url} within 0.2 s"
    assert run.state()["latency_ms"] is None


def test_sigterm_stops_the_prober_quietly(server, notify_socket, probers):
    run = probers.start("--http", server.url, *FAST, notify=notify_socket)
    run.wait_state(lambda s: s["state"] == "healthy")
    os.kill(run.pid, signal.SIGTERM)
    assert _wait_gone(run.pid) < 1.0
    assert run.log_text() == f"<6>service is healthy: {server.url} answered in {run.state()['latency_ms']:g} ms\n"


def test_the_prober_ends_with_the_main_process(server, notify_socket, probers):
    main = subprocess.Popen(["sleep", "30"])
    try:
        run = probers.start("--http", server.url, *FAST, notify=notify_socket, env={"MAINPID": str(main.pid)})
        run.wait_state(lambda s: s["state"] == "healthy")
        assert _alive(run.pid)
    finally:
        main.kill()
        main.wait()
    _wait_gone(run.pid, timeout=2)
    assert run.log_text().endswith(f"<6>main process {main.pid} is gone; health check stops\n")


def test_abstract_notify_socket_address(server, probers):
    name = f"condasvc-health-test-{uuid.uuid4().hex}"
    ns = NotifySocket("@" + name, "\0" + name)
    try:
        run = probers.start("--http", server.url, *FAST, notify=ns)
        assert ns.wait_for(lambda m: True) == "WATCHDOG=1"
        os.kill(run.pid, signal.SIGTERM)
        _wait_gone(run.pid)
    finally:
        ns.sock.close()


def test_bad_arguments_fail_the_command_and_start_nothing(probers):
    run = probers.start("--tcp", "127.0.0.1:80", "--interval", "1", "--timeout", "5")
    assert run.rc == 2 and run.seconds < 1.0
    assert "must not exceed interval_sec" in run.log_text()
    assert not run.state_file.exists()


def test_without_notify_socket_it_says_so(server, probers):
    run = probers.start("--http", server.url, *FAST)
    run.wait_state(lambda s: s["state"] == "healthy")
    os.kill(run.pid, signal.SIGTERM)
    _wait_gone(run.pid)
    assert run.log_text().startswith("<4>NOTIFY_SOCKET is not set")


# --------------------------------------------------------------------------
# The real user manager: a service whose health breaks is restarted by its watchdog

SERVICE = r"""
import http.server, os, sys
flag = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists(flag) else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _show(unit: str) -> dict:
    out = systemctl("show", "-p", "NRestarts,Result,ActiveState,MainPID", unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.systemd
def test_systemd_restarts_a_service_whose_health_check_fails(tmp_path):
    unit = f"{PREFIX}health-{uuid.uuid4().hex[:6]}.service"
    script, flag, state_file = tmp_path / "service.py", tmp_path / "broken", tmp_path / "svc.health.json"
    script.write_text(SERVICE)
    port = free_port()
    check = validate_check(
        {
            "type": "http",
            "url": f"http://127.0.0.1:{port}/",
            "interval_sec": 0.5,
            "timeout_sec": 0.4,
            "start_period_sec": 2,
            "failure_threshold": 2,
        }
    )
    watchdog = watchdog_sec(
        check["interval_sec"], check["timeout_sec"], check["start_period_sec"], check["failure_threshold"]
    )
    post = " ".join(prober_argv(sys.executable, "svc", str(state_file), check, status=True))
    run = subprocess.run(
        [
            "systemd-run",
            "--user",
            "--quiet",
            f"--unit={unit}",
            f"--setenv=PYTHONPATH={PACKAGE_ROOT}",
            f"--property=WatchdogSec={watchdog}",
            "--property=NotifyAccess=all",
            "--property=Restart=on-failure",
            "--property=RestartSec=0.5",
            f"--property=ExecStartPost={post}",
            *(f"--setenv={k}={v}" for k, v in health_environment(check).items()),
            sys.executable,
            str(script),
            str(port),
            str(flag),
        ],
        capture_output=True,
        text=True,
        env=SYSTEMCTL_ENV,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    try:
        # healthy for longer than WatchdogSec: the prober's pings keep it alive
        deadline = time.monotonic() + watchdog + 1.0
        first = None
        while time.monotonic() < deadline:
            if state_file.exists():
                first = json.loads(state_file.read_text())
            time.sleep(0.1)
        shown = _show(unit)
        assert shown["ActiveState"] == "active" and shown["NRestarts"] == "0", (shown, journal(unit))
        assert first and first["state"] == "healthy", (first, journal(unit))
        status = systemctl("show", "-p", "StatusText", "--value", unit).stdout.strip()
        assert status.startswith("healthy (")

        flag.touch()
        broke = time.monotonic()
        while _show(unit)["NRestarts"] == "0":
            assert time.monotonic() - broke < 10, (_show(unit), journal(unit))
            time.sleep(0.05)
        restarted_after = time.monotonic() - broke
        flag.unlink()
        print(f"health turned bad -> restart scheduled after {restarted_after:.2f} s")
        assert restarted_after < watchdog  # the prober's trigger, not a watchdog timeout

        # the new instance gets a new prober, which finds it healthy again
        second = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            second = json.loads(state_file.read_text())
            if second["pid"] != first["pid"] and second["state"] == "healthy":
                break
            time.sleep(0.1)
        assert second["pid"] != first["pid"] and second["state"] == "healthy", second
        print(f"health turned bad -> new instance healthy after {time.monotonic() - broke:.2f} s")
        assert _show(unit)["ActiveState"] == "active"
        assert not _alive(first["pid"])

        log = journal(unit)
        assert (
            f"health check failed 2 times in a row (last: HTTP 500 from {check['url']}); "
            "asking systemd to restart the service" in log
        ), log
        assert "Failed with result 'watchdog'" in log, log
        assert "Watchdog request (last status: unhealthy: HTTP 500" in log, log
        errors = subprocess.run(
            ["journalctl", "--user", "-u", unit, "-p", "err", "-o", "cat", "--no-pager"],
            capture_output=True,
            text=True,
            env=SYSTEMCTL_ENV,
            timeout=30,
        ).stdout
        assert "health check failed 2 times in a row" in errors  # the <3> prefix became PRIORITY=3
    finally:
        systemctl("stop", unit)
        systemctl("reset-failed", unit)
    assert _show(unit).get("ActiveState") in ("inactive", None)
