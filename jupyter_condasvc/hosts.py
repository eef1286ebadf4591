"""``GET hosts`` and ``jupyter condasvc hosts``: every host's reachability and the doctor's checks run there.

One row per host: ``local`` first, then each configured host (``CondaSvcApp.hosts``). A reachable host's row
carries what its own ``GET host`` and ``doctor`` say (the bridge's ``doctor`` op runs :func:`local_report` on
that host: the same checks and words as here); an unreachable one carries the :class:`~.remote.HostError`'s
kind, message and fix, and the last report it gave, marked ``stale``.

Each host is checked by its own task, so one slow or dead host never delays another: a request waits for the
checks it started at most ``wait`` seconds and answers the others from their last state (``checking``). A host
in its reconnect backoff answers its last error at once, without dialling (:meth:`~.remote.RemoteHost.connect`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional

from .errors import CondaSvcError

LOCAL = "local"


async def local_report(services: Any) -> Dict[str, Any]:
    """This host's ``GET host`` report and ``doctor`` checks, together (what the bridge's ``doctor`` op answers)."""
    from .doctor import run_doctor
    from .host import host_report

    report, doctor = await asyncio.gather(host_report(services.systemd), run_doctor(services))
    return {"host": report, "doctor": doctor}


def error_json(exc: CondaSvcError) -> Dict[str, Any]:
    """``{kind, message, fix}`` of a host's failure (a HostError's own words; a bridge's refusal is ``bridge``)."""
    fix = getattr(exc, "fix", "") or ""
    message = exc.message
    if fix and message.endswith(fix):
        message = message[: -len(fix)].rstrip()
    kind = getattr(exc, "kind", None)
    if kind is None:  # the host answered, but not to `doctor` (an older bridge) or with an error
        kind = "bridge"
        fix = "Install the same version of jupyter_condasvc there as here."
    return {"kind": kind, "message": message, "fix": fix or None}


@dataclass
class _Row:
    name: str
    reachable: Optional[bool] = None
    report: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    checked_at: Optional[float] = None  # time.time() of the last answer or failure
    fresh_at: float = 0.0  # time.monotonic() of the last answer or failure
    task: Optional[asyncio.Task[None]] = None

    def to_json(self) -> Dict[str, Any]:
        checking = self.task is not None and not self.task.done()
        return {
            "name": self.name,
            "local": self.name == LOCAL,
            "reachable": self.reachable,
            "error": self.error,
            "report": self.report,
            "stale": self.report is not None and self.error is not None,
            "checking": checking,
            "checked_at": self.checked_at,
        }


class HostsReport:
    """The rows of ``GET hosts``, each kept per host and refreshed by its own task.

    ``local()`` gives this host's report; ``remotes`` is the :class:`~.remote.RemoteHosts` of the server (or the
    CLI). A report is reused for ``max_age`` seconds; a host whose last check failed is checked again at each
    request (its client's backoff decides whether it is dialled).
    """

    def __init__(
        self,
        local: Callable[[], Awaitable[Dict[str, Any]]],
        remotes: Any,
        *,
        max_age: float = 60.0,
        wait: Optional[float] = 5.0,
    ) -> None:
        self.local = local
        self.remotes = remotes
        self.max_age = max_age
        self.wait = wait
        self.rows: Dict[str, _Row] = {}

    def names(self) -> List[str]:
        return [LOCAL, *(n for n in self.remotes.names() if n != LOCAL)]

    def _due(self, row: _Row, refresh: bool) -> bool:
        if row.task is not None and not row.task.done():
            return False  # one check at a time per host: this request shares it
        if refresh or row.checked_at is None or row.error is not None:
            return True
        return time.monotonic() - row.fresh_at >= self.max_age

    async def report(self, *, refresh: bool = False) -> Dict[str, Any]:
        names = self.names()
        for name in names:
            row = self.rows.setdefault(name, _Row(name))
            if self._due(row, refresh):
                row.task = asyncio.ensure_future(self._check(row))
        pending = {t for t in (self.rows[n].task for n in names) if t is not None and not t.done()}
        if pending and (self.wait is None or self.wait > 0):
            await asyncio.wait(pending, timeout=self.wait)  # never cancels: a late check still lands in its row
        return {"hosts": [self.rows[n].to_json() for n in names]}

    async def _check(self, row: _Row) -> None:
        try:
            if row.name == LOCAL:
                report = await self.local()
            else:
                report = await self.remotes.get(row.name).call("doctor")
        except CondaSvcError as exc:
            row.error = error_json(exc)
            row.reachable = row.error["kind"] == "bridge"  # it answered, just not with a report
        except Exception as exc:  # noqa: BLE001 - one host's surprise is that host's row, not the request's 500
            row.error = {"kind": "internal", "message": f"{type(exc).__name__}: {exc}", "fix": None}
            row.reachable = None
        else:
            row.report, row.error, row.reachable = report, None, True
        row.checked_at, row.fresh_at = time.time(), time.monotonic()

    def close(self) -> None:
        for row in self.rows.values():
            if row.task is not None:
                row.task.cancel()
