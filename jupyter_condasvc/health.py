"""Health checks for services: ``python -m jupyter_condasvc.health``.

A service with a health check gets, in its unit::

    WatchdogSec=<watchdog_sec(...)>
    NotifyAccess=all
    ExecStartPost=<server python> -m jupyter_condasvc.health --name <service>
        --state-file <path> (--http-env CONDASVC_HEALTH_URL | --tcp HOST:PORT)
        --interval S --timeout S --start-period S --failure-threshold N [--status]

systemd runs ``ExecStartPost=`` once the main process has started (for
``Type=notify``, once it sent ``READY=1``).  The command checks its arguments
(exit 2 if they are bad, which fails the start), forks a detached prober
(double fork, new session, stdin from ``/dev/null``, stdout/stderr kept: they
are the journal) and exits 0 at once, so the unit becomes active.  The prober
stays in the unit's cgroup and loops:

* every ``--interval`` seconds (start to start) it probes: ``--http``: a
  ``GET``, healthy iff the status is 2xx or 3xx (redirects are not followed)
  within ``--timeout``; ``https`` certificates are not verified (the check
  asks "does it answer", mostly on localhost with self-signed certificates);
  ``user:password@`` in the URL becomes Basic auth.  The URL of a service's
  check travels in the service's 0600 EnvironmentFile (variable
  ``CONDASVC_HEALTH_URL``, read with ``--http-env``), never in the unit text
  or the prober's command line, which every local user can read; what the
  prober shows (journal lines, status text, ``last_error``) names the URL
  with its user information and query values replaced by ``***``
  (:func:`redact_url`).  ``--tcp``: a connect
  within ``--timeout``.
* after each success it sends ``WATCHDOG=1`` to ``$NOTIFY_SOCKET``
  (``NotifyAccess=all`` makes systemd pass the socket to ``ExecStartPost=``
  and accept datagrams from any process of the unit).
* the start period lasts ``--start-period`` seconds or until the first
  success, whichever comes first; failures in it do not count, and every
  probe in it pings the watchdog whatever its result.
* after ``--failure-threshold`` consecutive counted failures it logs at err
  ``health check failed 3 times in a row (last: ...); asking systemd to
  restart the service``, sends ``WATCHDOG=trigger`` (systemd >= 243: the
  watchdog fires at once, the unit's result becomes ``watchdog`` and
  ``Restart=on-failure``/``always`` restarts it) and exits.  On an older
  systemd the trigger is ignored, but the pings have stopped: the watchdog
  fires after ``WatchdogSec=`` instead.
* it exits quietly on SIGTERM, SIGINT, SIGHUP and SIGABRT (the unit stopping,
  or the watchdog signal), and when the unit's main process (``$MAINPID``,
  which systemd sets for ``ExecStartPost=``) is gone, so it never outlives
  its service even under ``KillMode=process``.

Journal lines carry syslog level prefixes and are written on state changes
only, not per probe: ``<6>`` healthy (first time, and on recovery), ``<4>``
failing (with ``n/N`` towards the restart), ``<3>`` the restart request.

With ``--status`` every probe also sets the unit's status text
(``STATUS=healthy (12 ms)``, ``STATUS=unhealthy: HTTP 500 from ... (1/3)``,
``STATUS=starting: ...``), which ``systemctl status`` shows.  Leave it off
when the main process reports its own status (the notebook runner).

State file (``--state-file``), replaced atomically (temporary file in the same
directory + ``os.replace``) after a probe that changed ``state``,
``consecutive_failures`` or ``last_error``, and at least every 10 s otherwise;
also once at start-up, before the first probe::

    {"state": "starting" | "healthy" | "unhealthy",
     "consecutive_failures": 0,            # counted failures in a row
     "last_probe": "2026-11-27T03:12:55.123+00:00" | null,   # UTC, ISO 8601
     "last_ok": "..." | null,              # last successful probe
     "last_error": "HTTP 500 from http://127.0.0.1:8000/" | null,  # last failure's reason (kept after recovery)
     "latency_ms": 12.3 | null,            # last probe, if it got an answer
     "pid": 4242}                          # the prober

``starting`` until the first success (or the first counted failure),
``healthy`` while the last probe succeeded, ``unhealthy`` from the first
counted failure on; the restart comes at ``consecutive_failures ==
failure_threshold``.  The file is left as it was when the prober exits
(unit stopped): read it together with the unit's state.

Exit status of the command: 0 (prober started; with ``--foreground``, the
prober's own end: 0 stopped, 1 restart requested), 2 bad arguments.

The pure helpers :func:`validate_check`, :func:`watchdog_sec` and
:func:`prober_argv` are what unit rendering uses.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as _dt
import ipaddress
import json
import math
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from .atomicfile import atomic_write
from .errors import InvalidSpec
from .sdnotify import notify

#: Defaults for a check's timing, in seconds (Docker's HEALTHCHECK shape).
DEFAULT_INTERVAL_SEC = 10.0
DEFAULT_TIMEOUT_SEC = 3.0
DEFAULT_START_PERIOD_SEC = 30.0
DEFAULT_FAILURE_THRESHOLD = 3
MAX_FAILURE_THRESHOLD = 100
#: Longest interval / start period accepted (one day).
MAX_PERIOD_SEC = 86400.0
#: The state file is rewritten at least this often while nothing changes.
STATE_REFRESH_SEC = 10.0

_FIELD = "health_check"
#: The variable (in the service's 0600 EnvironmentFile) that carries an http check's URL to the prober.
HEALTH_URL_VARIABLE = "CONDASVC_HEALTH_URL"
_REDACTED = "***"
_KEYS = ("type", "url", "host", "port", "interval_sec", "timeout_sec", "start_period_sec", "failure_threshold")

# syslog levels journald reads from a "<N>" line prefix
ERR, WARNING, INFO = 3, 4, 6


# --------------------------------------------------------------------------
# Pure helpers for the spec and unit rendering


def _bad(message: str) -> InvalidSpec:
    return InvalidSpec(message, field=_FIELD)


def _number(data: Mapping[str, Any], key: str, default: float, *, minimum: float, strict: bool) -> float:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"health_check.{key} must be a number of seconds, not {value!r}.")
    if value < minimum or (strict and value == minimum) or value > MAX_PERIOD_SEC:
        low = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
        raise _bad(f"health_check.{key} must be {low} and at most {MAX_PERIOD_SEC:g} seconds, not {value!r}.")
    return float(value)


def _url_host(url: Any) -> Tuple[str, int, bool]:
    """(host, port, tls) of an http(s) URL, or InvalidSpec."""
    if not isinstance(url, str) or not url:
        raise _bad("An http health check needs 'url', e.g. \"http://127.0.0.1:8000/health\".")
    if len(url) > 2048 or any(c.isspace() or not c.isprintable() for c in url):
        raise _bad("health_check.url must be one line without white space, at most 2048 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad("health_check.url is not a valid URL (check its port and brackets).") from None
    if parts.scheme not in ("http", "https"):
        raise _bad(f"health_check.url must start with http:// or https://, not {redact_url(url)!r}.")
    if not parts.hostname:
        raise _bad(f'health_check.url must name a host, e.g. "http://127.0.0.1:8000/", not {redact_url(url)!r}.')
    if port == 0:
        raise _bad("health_check.url has port 0; give the port the service listens on.")
    tls = parts.scheme == "https"
    return parts.hostname, port or (443 if tls else 80), tls


def _tcp_host(host: Any) -> str:
    if not isinstance(host, str) or not host.strip():
        raise _bad("A tcp health check needs 'host' (e.g. \"127.0.0.1\") and 'port'.")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if len(host) > 253 or any(c.isspace() or not c.isprintable() or c in "/@[]" for c in host):
        raise _bad(f"health_check.host must be a host name or IP address, not {host!r}.")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad(f"health_check.host must be a host name or IP address, not {host!r}.") from None
    return host


def validate_check(data: Any) -> Dict[str, Any]:
    """A health check as given in a service spec -> its complete, normalised form.

    Returns ``{"type", "url", "host", "port", "interval_sec", "timeout_sec",
    "start_period_sec", "failure_threshold"}`` with defaults filled in
    (interval 10 s, timeout 3 s or the interval if shorter, start period
    30 s, threshold 3) and ``None``
    for the address fields the type does not use.  Raises
    :class:`InvalidSpec` (field ``health_check``) with a sentence saying
    what to fix.
    """
    if not isinstance(data, Mapping):
        raise _bad('health_check must be an object such as {"type": "http", "url": "http://127.0.0.1:8000/"}.')
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise _bad(f"health_check has unknown field(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}.")
    kind = data.get("type")
    if kind not in ("http", "tcp"):
        raise _bad(f'health_check.type must be "http" or "tcp", not {kind!r}.')
    out: Dict[str, Any] = {"type": kind, "url": None, "host": None, "port": None}
    if kind == "http":
        if data.get("host") is not None or data.get("port") is not None:
            raise _bad("An http health check takes 'url' only; 'host' and 'port' are for tcp checks.")
        _url_host(data.get("url"))
        out["url"] = data["url"]
    else:
        if data.get("url") is not None:
            raise _bad("A tcp health check takes 'host' and 'port'; 'url' is for http checks.")
        out["host"] = _tcp_host(data.get("host"))
        port = data.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _bad(f"health_check.port must be a whole number from 1 to 65535, not {port!r}.")
        out["port"] = port
    interval = _number(data, "interval_sec", DEFAULT_INTERVAL_SEC, minimum=0, strict=True)
    # an interval shorter than the default timeout brings its own timeout down with it
    timeout = _number(data, "timeout_sec", min(DEFAULT_TIMEOUT_SEC, interval), minimum=0, strict=True)
    if timeout > interval:
        raise _bad(
            f"health_check.timeout_sec ({timeout:g} s) must not exceed interval_sec ({interval:g} s): "
            "a probe has to finish before the next one starts."
        )
    start_period = _number(data, "start_period_sec", DEFAULT_START_PERIOD_SEC, minimum=0, strict=False)
    threshold = data.get("failure_threshold")
    if threshold is None:
        threshold = DEFAULT_FAILURE_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= MAX_FAILURE_THRESHOLD:
        raise _bad(
            f"health_check.failure_threshold must be a whole number from 1 to {MAX_FAILURE_THRESHOLD}, not "
            f"{threshold!r}."
        )
    out.update(interval_sec=interval, timeout_sec=timeout, start_period_sec=start_period, failure_threshold=threshold)
    return out


def redact_url(url: str) -> str:
    """``url`` as it may be shown: user information and query values replaced by ``***``.

    ``http://admin:pw@h:9/x?token=t&a`` -> ``http://***@h:9/x?token=***&a``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        query = "&".join(f"{item.partition('=')[0]}={_REDACTED}" if "=" in item else item for item in query.split("&"))
    out = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        out += f"?{query}"
    return out


def is_redacted_form(shown: Any, url: Any) -> bool:
    """True when ``shown`` is what :func:`redact_url` makes of ``url`` and hides something of it."""
    return isinstance(shown, str) and isinstance(url, str) and shown != url and redact_url(url) == shown


def health_environment(check: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """Variables the prober of ``check`` needs from the service's 0600 EnvironmentFile."""
    if check and check.get("type") == "http" and check.get("url"):
        return {HEALTH_URL_VARIABLE: str(check["url"])}
    return {}


def watchdog_sec(interval: float, timeout: float, start_period: float, failure_threshold: int) -> float:
    """``WatchdogSec=`` for a unit whose prober checks with these settings.

    ``interval * failure_threshold + timeout + max(2, interval)``, to the
    millisecond.

    Why: while the service is healthy the prober pings after every probe, so
    pings are at most ``interval + timeout`` apart (the first one comes at
    most ``timeout`` after the prober started).  Once probes fail, pings stop;
    the prober itself asks for the restart after ``failure_threshold``
    failures, at most ``interval * (failure_threshold - 1) + timeout`` after
    the last ping (``interval * failure_threshold + timeout`` counting from
    the last success, the worst case).  The watchdog must not fire before
    that, or the restart would happen without the prober's err line saying
    why.  The margin (``max(2 s, interval)``) covers the prober's own start
    (an interpreter launch after ``ExecStartPost=``) and scheduling delays on
    a loaded machine.  ``start_period`` needs no room: every probe in the
    start period pings whatever its result.  The watchdog is thus only the
    backstop for a prober that died or hangs (and for systemd < 243, which
    ignores ``WATCHDOG=trigger``).
    """
    del start_period  # covered by the pings during the start period; see above
    return round(interval * failure_threshold + timeout + max(2.0, interval), 3)


def _arg_seconds(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def prober_argv(python: str, name: str, state_file: str, check: Mapping[str, Any], status: bool) -> List[str]:
    """The ``ExecStartPost=`` command line for a validated ``check`` (see :func:`validate_check`).

    An http check's URL is not in it (it may hold credentials, and every local user can read a
    command line): the prober reads it from ``$CONDASVC_HEALTH_URL`` (:func:`health_environment`).
    """
    argv = [str(python), "-m", "jupyter_condasvc.health", "--name", name, "--state-file", str(state_file)]
    if check["type"] == "http":
        argv += ["--http-env", HEALTH_URL_VARIABLE]
    else:
        host = check["host"]
        argv += ["--tcp", f"[{host}]:{check['port']}" if ":" in host else f"{host}:{check['port']}"]
    argv += [
        "--interval",
        _arg_seconds(check["interval_sec"]),
        "--timeout",
        _arg_seconds(check["timeout_sec"]),
        "--start-period",
        _arg_seconds(check["start_period_sec"]),
        "--failure-threshold",
        str(int(check["failure_threshold"])),
    ]
    if status:
        argv.append("--status")
    return argv


# --------------------------------------------------------------------------
# The journal


def log(level: int, message: str) -> None:
    """One journal line with its syslog level prefix (stdout is the journal)."""
    text = " ".join(message.splitlines())
    try:
        sys.stdout.write(f"<{level}>{text}\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------
# Probes


@dataclass
class ProbeResult:
    ok: bool
    #: Why it failed, a phrase naming the target ("HTTP 500 from http://...").
    error: Optional[str] = None
    #: Milliseconds until the answer; None when there was no answer.
    latency_ms: Optional[float] = None


def _os_error(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "connection closed by the service"
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[0].lower() + text[1:] if text else type(exc).__name__


class Target:
    """What to probe: ``probe()`` returns a :class:`ProbeResult`, never raises (except cancellation)."""

    def __init__(
        self, *, url: Optional[str] = None, host: Optional[str] = None, port: Optional[int] = None, timeout: float
    ) -> None:
        self.timeout = timeout
        self.url = url
        if url is not None:
            parts = urlsplit(url)
            self.host, self.port, self.tls = _url_host(url)
            self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]
            self.request = (
                f"GET {self.path} HTTP/1.1\r\nHost: {netloc}\r\n"
                "User-Agent: jupyter-condasvc-health\r\nAccept: */*\r\nConnection: close\r\n"
            )
            if parts.username is not None:
                creds = f"{parts.username}:{parts.password or ''}".encode()
                self.request += f"Authorization: Basic {base64.b64encode(creds).decode()}\r\n"
            self.request += "\r\n"
            self.label = redact_url(url)
        else:
            assert host is not None and port is not None
            self.host, self.port, self.tls = host, port, False
            self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def probe(self) -> ProbeResult:
        start = time.monotonic()
        try:
            return await asyncio.wait_for(self._probe(start), self.timeout)
        except asyncio.TimeoutError:
            what = "no HTTP answer from" if self.url else "no TCP connection to"
            return ProbeResult(False, f"{what} {self.label} within {self.timeout:g} s")
        except OSError as exc:
            return ProbeResult(False, f"{self.label}: {_os_error(exc)}")

    async def _probe(self, start: float) -> ProbeResult:
        context = None
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=context, server_hostname=self.host if self.tls else None, limit=8192
        )
        try:
            if self.url is None:
                return ProbeResult(True, latency_ms=_ms_since(start))
            writer.write(self.request.encode("latin-1", "replace"))
            await writer.drain()
            try:
                line = await reader.readline()
            except ValueError:  # a status line longer than the limit
                line = b""
            latency = _ms_since(start)
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
                if not line:
                    return ProbeResult(False, f"{self.label}: connection closed without an HTTP answer", latency)
                return ProbeResult(False, f"{self.label}: not an HTTP answer ({line[:60]!r})", latency)
            code = int(parts[1])
            if 200 <= code < 400:
                return ProbeResult(True, latency_ms=latency)
            return ProbeResult(False, f"HTTP {code} from {self.label}", latency)
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 0.5)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                pass


def _ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000.0, 1)


# --------------------------------------------------------------------------
# The prober


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    # "pid (comm) S ...": comm may contain spaces and parentheses
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


class Prober:
    """The probe loop, its state and what it tells systemd and the journal."""

    def __init__(
        self,
        target: Target,
        *,
        name: str,
        state_file: Optional[Path],
        interval: float,
        start_period: float,
        failure_threshold: int,
        status: bool,
        main_pid: Optional[int] = None,
        clock: Callable[[], float] = time.monotonic,
        send: Callable[[str], bool] = notify,
    ) -> None:
        self.target = target
        self.name = name
        self.state_file = state_file
        self.interval = interval
        self.start_period = start_period
        self.failure_threshold = failure_threshold
        self.status = status
        self.main_pid = main_pid
        self.clock = clock
        self.send = send
        self.started = clock()
        self.in_start_period = True
        self.state = "starting"
        self.consecutive_failures = 0
        self.last_probe: Optional[str] = None
        self.last_ok: Optional[str] = None
        self.last_error: Optional[str] = None
        self.latency_ms: Optional[float] = None
        self._written_key: Optional[Tuple[Any, ...]] = None
        self._written_at = -math.inf
        self._state_file_warned = False
        self._start_error_logged = False

    # -- state file

    def snapshot(self) -> Dict[str, Any]:
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "last_probe": self.last_probe,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "latency_ms": self.latency_ms,
            "pid": os.getpid(),
        }

    def write_state(self, *, force: bool = False) -> None:
        if self.state_file is None:
            return
        key = (self.state, self.consecutive_failures, self.last_error)
        now = self.clock()
        if not force and key == self._written_key and now - self._written_at < STATE_REFRESH_SEC:
            return
        path = self.state_file
        try:
            atomic_write(path, json.dumps(self.snapshot()) + "\n", 0o600)
        except OSError as exc:
            if not self._state_file_warned:
                self._state_file_warned = True
                log(WARNING, f"cannot write the health state file {path}: {exc}")
            return
        self._written_key, self._written_at = key, now

    # -- one probe's outcome

    def record(self, result: ProbeResult) -> bool:
        """Take one probe's result; True when the service must be restarted."""
        self.last_probe = _now_iso()
        self.latency_ms = result.latency_ms
        now = self.clock()
        if result.ok:
            self.last_ok = self.last_probe
            self.in_start_period = False
            if self.state != "healthy":
                if self.consecutive_failures:
                    log(
                        INFO,
                        f"health check passes again after {self.consecutive_failures} failure(s): "
                        f"{self.target.label} answered in {result.latency_ms:g} ms",
                    )
                else:
                    log(INFO, f"service is healthy: {self.target.label} answered in {result.latency_ms:g} ms")
            self.state = "healthy"
            self.consecutive_failures = 0
            self._ping(f"healthy ({result.latency_ms:.0f} ms)")
            return False

        self.last_error = result.error
        if self.in_start_period and now - self.started < self.start_period:
            if not self._start_error_logged:
                self._start_error_logged = True
                log(
                    INFO,
                    f"waiting for the service to become healthy (start period {self.start_period:g} s): {result.error}",
                )
            self._ping(f"starting: {result.error}")
            return False
        self.in_start_period = False
        self.consecutive_failures += 1
        n, limit = self.consecutive_failures, self.failure_threshold
        if n >= limit:
            self.state = "unhealthy"
            log(
                ERR,
                f"health check failed {n} times in a row (last: {result.error}); asking systemd to restart the service",
            )
            return True
        if self.state != "unhealthy":
            log(WARNING, f"health check failing ({n}/{limit} before a restart): {result.error}")
        self.state = "unhealthy"
        if self.status:
            self.send(f"STATUS=unhealthy: {result.error} ({n}/{limit})")
        return False

    def _ping(self, status_text: str) -> None:
        message = "WATCHDOG=1"
        if self.status:
            message += f"\nSTATUS={status_text}"
        self.send(message)

    def request_restart(self) -> None:
        message = "WATCHDOG=trigger"
        if self.status:
            message += f"\nSTATUS=unhealthy: {self.last_error}; restarting"
        self.send(message)

    def main_process_gone(self) -> bool:
        return self.main_pid is not None and not _pid_alive(self.main_pid)

    # -- the loop

    async def run(self) -> int:
        """Probe until a restart is due (returns 1) or the main process is gone (returns 0)."""
        self.write_state(force=True)
        next_at = self.clock()
        while True:
            if self.main_process_gone():
                log(INFO, f"main process {self.main_pid} is gone; health check stops")
                return 0
            result = await self.target.probe()
            restart = self.record(result)
            self.write_state(force=restart)
            if restart:
                # journald attributes a line to its unit by reading the writer's cgroup: the restart kills us, so
                # give it a moment to read the line that says why, or the log would miss the reason.
                await asyncio.sleep(0.25)
                self.request_restart()
                return 1
            next_at += self.interval
            now = self.clock()
            if next_at < now:  # fell behind (suspend, overload): do not burst
                next_at = now
            await asyncio.sleep(next_at - now)


# --------------------------------------------------------------------------
# Command line


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _tcp_address(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535 or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def parse_args(argv: Optional[Sequence[str]] = None) -> Tuple[argparse.Namespace, Dict[str, Any]]:
    """The arguments and the validated check they describe (exits 2 when bad)."""
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_condasvc.health",
        description="Probe a service and feed its systemd watchdog; runs in the background "
        "(ExecStartPost= of a unit with WatchdogSec= and NotifyAccess=all).",
    )
    parser.add_argument("--name", required=True, help="the service's name (for messages)")
    parser.add_argument("--state-file", required=True, help="JSON file the health state is written to")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--http", metavar="URL", help="GET this http(s) URL; 2xx/3xx is healthy")
    target.add_argument(
        "--http-env",
        metavar="VARIABLE",
        help="like --http, the URL read from this environment variable (keeps credentials off the command line)",
    )
    target.add_argument("--tcp", metavar="HOST:PORT", type=_tcp_address, help="connect to this address")
    parser.add_argument("--interval", type=_positive_seconds, default=DEFAULT_INTERVAL_SEC)
    parser.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT_SEC)
    parser.add_argument("--start-period", type=_positive_seconds, default=DEFAULT_START_PERIOD_SEC)
    parser.add_argument("--failure-threshold", type=int, default=DEFAULT_FAILURE_THRESHOLD)
    parser.add_argument("--status", action="store_true", help="also set the unit's STATUS= text")
    parser.add_argument("--foreground", action="store_true", help="do not fork into the background (debugging)")
    args = parser.parse_args(argv)
    if args.http_env is not None:
        args.http = os.environ.get(args.http_env)
        if not args.http:
            parser.error(f"--http-env: the variable {args.http_env} is not set")
    data: Dict[str, Any] = {
        "type": "http" if args.http is not None else "tcp",
        "interval_sec": args.interval,
        "timeout_sec": args.timeout,
        "start_period_sec": args.start_period,
        "failure_threshold": args.failure_threshold,
    }
    if args.http is not None:
        data["url"] = args.http
    else:
        data["host"], data["port"] = args.tcp
    try:
        check = validate_check(data)
    except InvalidSpec as exc:
        parser.error(exc.message)
    return args, check


def daemonize() -> None:
    """Double fork: the caller's process exits 0 once the detached grandchild exists.

    Returns in the grandchild only: a new session, not a session leader,
    stdin from /dev/null, stdout/stderr inherited (the journal), still in
    the unit's cgroup.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid > 0:
        _, status = os.waitpid(pid, 0)
        os._exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir("/")


async def _serve(prober: Prober) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(prober.run())
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGABRT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return 0


def _main_pid(env: Mapping[str, str]) -> Optional[int]:
    text = env.get("MAINPID", "")
    return int(text) if text.isdigit() and int(text) > 1 else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, check = parse_args(argv)
    state_file = Path(os.path.abspath(args.state_file))
    target = Target(url=check["url"], host=check["host"], port=check["port"], timeout=check["timeout_sec"])
    if not args.foreground:
        daemonize()
    if not os.environ.get("NOTIFY_SOCKET"):
        log(
            WARNING,
            "NOTIFY_SOCKET is not set, so the health check cannot ask systemd for a restart "
            "(the unit needs NotifyAccess=all and WatchdogSec=)",
        )
    prober = Prober(
        target,
        name=args.name,
        state_file=state_file,
        interval=check["interval_sec"],
        start_period=check["start_period_sec"],
        failure_threshold=check["failure_threshold"],
        status=args.status,
        main_pid=_main_pid(os.environ),
    )
    return asyncio.run(_serve(prober))


if __name__ == "__main__":
    sys.exit(main())
