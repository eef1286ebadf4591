"""A service's log: history (REST) and live follow (WebSocket).

``GET {base_url}condasvc/api/services/{name}/logs``
    Query: ``host`` (``local`` by default, or a configured host: the page is read there),
    ``n`` (default 100, at most ``CondaSvcApp.log_page_max``),
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
    ``boot``, ``text``/``regex`` as above, and ``host`` (another host's log, followed
    there through its bridge and filtered there: ``boot`` names that host's boots).  Server to client::

        {"type": "hello", "name", "unit", "journal": <diagnosis>}
        {"type": "entries", "entries": [<entry>...], "cursor": "<last>"}   # lines that arrived together
        {"type": "dropped", "count": n, "after": "<cursor>"|null, "until": "<cursor>", "message"}
            # this client fell behind: n entries after "after" up to and including "until" were not sent
        {"type": "error", "message"}   # e.g. the journal cannot be opened; the socket then closes (1008)
        {"type": "lost", "host", "error": <HostError>}   # another host is out of reach: redialled with
            # backoff, then the follow resumes after the last entry sent (hello carries ``host`` there)

    journald's "Suppressed N messages" notes arrive as entries with a ``marker``.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Optional

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..fleet import LOCAL, RemoteFollow
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
        app = self.condasvc_app

        def get(key: str) -> Optional[str]:
            return self.get_query_argument(key, None)

        page = await self.target().logs(name, get, max_n=app.log_page_max, max_scan=app.log_max_scan)
        if fmt == "json":
            self.finish(page.to_json_bytes())
            return
        self.set_header("Content-Disposition", f'attachment; filename="{name}.log"')
        self.finish(format_text(page.entries), set_content_type="text/plain; charset=utf-8")


class LogsFollowWebSocket(CondaSvcWebSocket):
    follower: Optional[Follower] = None
    # not `stream`: WebSocketMixin declares that name (a tornado IOStream)
    log_follow: Optional[LogFollow] = None
    remote_follow: Optional[RemoteFollow] = None

    async def prepare_socket(self, name: str) -> None:
        target = self.settings["condasvc_fleet"].target(self.get_query_argument("host", None))
        cursor = self.get_query_argument("cursor", None) or None
        query = _query(self, default_n=0)
        self.service_name = name
        if target.name != LOCAL:  # checked and resolved there (a 404 or 503 before the upgrade)
            get = functools.partial(self.get_query_argument, default=None)
            self.remote_follow = await RemoteFollow.open(target, name, get, cursor=cursor, backlog=query.n)
            return
        services = self.settings["condasvc_services"]
        self.log_follow = await services.follow(name, query, cursor=cursor)

    def open(self, name: str) -> None:  # type: ignore[override]
        super().open(name)
        if self.remote_follow is not None:
            self.remote_follow.start(self.send, self.close)
            return
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
        if self.remote_follow is not None:
            self.remote_follow.stop()
            self.remote_follow = None


handlers = [
    (rf"/condasvc/api/services/{NAME}/logs", LogsHandler),
    (rf"/condasvc/api/services/{NAME}/logs/follow", LogsFollowWebSocket),
]
