"""A service's log: history (REST) and live follow (WebSocket).

``GET {base_url}condasvc/api/services/{name}/logs``
    Query: ``n`` (default 100, at most ``CondaSvcApp.log_page_max``),
    ``before=<cursor>`` / ``after=<cursor>`` (a page before/after),
    ``priority`` (``err``, ``3``, or a range ``crit..warning``), ``since`` /
    ``until`` (ISO 8601, epoch seconds, or ``-5m``/``-2h``/``-1d``), ``boot``
    (``this``, ``all``, or a boot id), ``text`` (substring; ``regex=1`` makes
    it an RE2 regular expression; case-insensitive unless it has capitals),
    ``format=json`` (default) or ``text`` (a download, like ``journalctl -o
    short-iso-precise``).  JSON answer::

        {"name", "unit", "entries": [<entry>...] (oldest first),
         "first_cursor", "last_cursor",  # edges of what was scanned: pass as before= / after=,
                                         # or last_cursor as the follow socket's cursor
         "more_before", "more_after", "scanned", "scan_limited",
         "journal": <diagnosis: {"ok", "storage", "problems": [{"code","message","fix"}], "fix", ...}>}

    Entry shape: see :mod:`jupyter_condasvc.journal.query`.

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

import json
from typing import TYPE_CHECKING, Any, Optional

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..journal.query import LogQuery, format_text
from .base import CondaSvcHandler
from .events import CondaSvcWebSocket
from .services import NAME

if TYPE_CHECKING:
    from ..journal.follow import Follower, LogFollow


def _query(handler: Any, *, default_n: int) -> LogQuery:
    def get(key: str) -> Any:
        return handler.get_query_argument(key, None)

    return LogQuery.parse(get, max_n=handler.extensionapp.log_page_max, default_n=default_n)


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
        page = await self.services.logs(name, _query(self, default_n=100), max_scan=self.condasvc_app.log_max_scan)
        if fmt == "json":
            self.finish(page.to_json_bytes())
            return
        self.set_header("Content-Disposition", f'attachment; filename="{name}.log"')
        self.finish(format_text(page.entries), set_content_type="text/plain; charset=utf-8")


class LogsFollowWebSocket(CondaSvcWebSocket):
    follower: Optional[Follower] = None
    # not `stream`: WebSocketMixin declares that name (a tornado IOStream)
    log_follow: Optional[LogFollow] = None

    async def prepare_socket(self, name: str) -> None:
        services = self.settings["condasvc_services"]
        cursor = self.get_query_argument("cursor", None) or None
        self.log_follow = await services.follow(name, _query(self, default_n=0), cursor=cursor)
        self.service_name = name

    def open(self, name: str) -> None:  # type: ignore[override]
        super().open(name)
        stream = self.log_follow
        if stream is None:  # prepare_socket resolves it before the upgrade; never here
            return
        self.send(json.dumps(stream.hello()))
        try:
            self.follower = stream.start(self.settings["condasvc_follow"], self.send)
        except Exception as exc:  # noqa: BLE001 - e.g. the journal cannot be opened: say so and close
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
