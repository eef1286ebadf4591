"""A service's log: history (REST) and live follow (WebSocket).

``GET {base_url}condasvc/api/services/{name}/logs``
    Query: ``n`` (default 100, at most ``CondaSvcApp.log_page_max``),
    ``before=<cursor>`` / ``after=<cursor>`` (a page before/after),
    ``priority`` (``err``, ``3``, or a range ``crit..warning``), ``since`` /
    ``until`` (ISO 8601, epoch seconds, or ``-5m``/``-2h``/``-1d``), ``boot``
    (``this``, ``all``, or a boot id), ``text`` (substring; ``regex=1`` makes
    it a Python regular expression; case-insensitive unless it has capitals),
    ``format=json`` (default) or ``text`` (a download, like ``journalctl -o
    short-iso-precise``).  JSON answer::

        {"name", "unit", "entries": [<entry>...] (oldest first),
         "first_cursor", "last_cursor",  # edges of what was scanned: pass as before= / after=,
                                         # or last_cursor as the follow socket's cursor
         "more_before", "more_after", "scanned", "scan_limited",
         "journal": <diagnosis: {"ok", "storage", "problems": [{"code","message","fix"}], "fix", ...}>}

    Entry shape: see :mod:`jupyter_condasvc.journal`.

``GET {base_url}condasvc/api/services/{name}/logs/follow`` (WebSocket)
    Query: ``cursor`` (resume right after it: no gap, no duplicate) or ``n``
    (backlog entries before the tail, default 0), plus ``priority``,
    ``boot``, ``text``/``regex`` as above.  Server to client::

        {"type": "hello", "name", "unit", "journal": <diagnosis>}
        {"type": "entries", "entries": [<entry>...], "cursor": "<last>"}   # lines that arrived together
        {"type": "dropped", "count": n, "after": "<cursor>"|null, "until": "<cursor>", "message"}
            # this client fell behind: n entries after "after" up to and including "until" were not sent
        {"type": "error", "message"}   # e.g. the journal cannot be opened; the socket then closes (1008)

    journald's "Suppressed N messages" notes arrive as entries with a ``marker``.
"""
from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from ..journal import LogQuery, check_cursor, diagnose_cached, format_text, history, history_json
from .base import CondaSvcHandler
from .events import CondaSvcWebSocket
from .services import NAME


def _query(handler: Any, *, default_n: int) -> LogQuery:
    def get(key: str) -> Any:
        return handler.get_query_argument(key, None)

    app = handler.extensionapp
    return LogQuery.parse(get, max_n=app.log_page_max, default_n=default_n)


class LogsHandler(CondaSvcHandler):
    def compute_etag(self) -> None:
        """No ETag: tornado would hash every page (a 1000-entry page is ~300 KB) for clients that never send it back."""
        return None

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "text"):
            raise web.HTTPError(400, "format must be json or text.")
        q = _query(self, default_n=100)
        store, max_scan = self.services.store, self.extensionapp.log_max_scan
        if fmt == "json":
            def page_json() -> str:  # one thread hop: record (re-read only if changed), page (cached entries), diagnosis
                unit = store.load_one(name)["unit"]
                return history_json(unit, os.getuid(), q, max_scan=max_scan, extra={"name": name, "journal": diagnose_cached()})

            self.set_header("Content-Type", "application/json")
            self.finish(await asyncio.to_thread(page_json))
            return
        record = await asyncio.to_thread(store.require_ours, name)
        unit = record["unit"]
        page = await asyncio.to_thread(history, unit, os.getuid(), q, max_scan=max_scan)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}.log"')
        # APIHandler.finish would force application/json
        self.update_api_activity()
        JupyterHandler.finish(self, format_text(page["entries"]))


class LogsFollowWebSocket(CondaSvcWebSocket):
    follower: Any = None
    unit: str = ""

    async def prepare_socket(self, name: str) -> None:
        self.query = _query(self, default_n=0)
        self.cursor = self.get_query_argument("cursor", None) or None
        if self.cursor is not None:
            check_cursor(self.cursor)
        record = await asyncio.to_thread(self.settings["condasvc_services"].store.require_ours, name)
        self.unit = record["unit"]
        self.service_name = name

    def open(self, name: str) -> None:  # type: ignore[override]
        super().open(name)
        hub = self.settings["condasvc_follow"]
        self.send(json.dumps({"type": "hello", "name": name, "unit": self.unit, "journal": diagnose_cached()}))
        q = self.query
        try:
            self.follower = hub.follow(
                self.unit, os.getuid(), self.send, cursor=self.cursor, backlog=q.n,
                priority=q.priority, matcher=q.matcher, boot=q.boot,
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a bad cursor: say so and close
            message = getattr(exc, "message", None) or str(exc)
            self.send(json.dumps({"type": "error", "message": message}))
            self.close(1008, message[:120])

    def on_close(self) -> None:
        if self.ping_callback is not None:
            self.ping_callback.stop()
        if self.follower is not None:
            self.settings["condasvc_follow"].remove(self.follower)
            self.follower = None


handlers = [
    (rf"/condasvc/api/services/{NAME}/logs", LogsHandler),
    (rf"/condasvc/api/services/{NAME}/logs/follow", LogsFollowWebSocket),
]
