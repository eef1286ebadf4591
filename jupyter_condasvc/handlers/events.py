"""WebSockets, shaped like jupyter_server's events socket, and the status stream.

``CondaSvcWebSocket`` is the base of every socket here: authenticated
(``@ws_authenticated``: no user, 403 before the upgrade), authorised in
``pre_get`` against the ``condasvc`` resource ("read"), origin-checked
(``WebSocketMixin.check_origin``: same host or the server's allow_origin
settings), kept alive with the server's ping settings, a listener added in
``open`` and removed in ``on_close``, a closed socket dropped quietly.

Route: ``GET {base_url}condasvc/api/events`` (WebSocket), the status stream
of all managed services; message shapes in :mod:`jupyter_condasvc.status`.
"""

from __future__ import annotations

from typing import Any, Optional

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web, websocket

from ..errors import CondaSvcError
from .base import AUTH_RESOURCE


class CondaSvcWebSocket(ExtensionHandlerMixin, WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    auth_resource = AUTH_RESOURCE

    async def pre_get(self) -> None:
        """Authorise before the upgrade (the user is already authenticated)."""
        authorized = await ensure_async(self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE))
        if not authorized:
            raise web.HTTPError(403, "You are not allowed to read condasvc services.")

    async def prepare_socket(self, *args: Any, **kwargs: Any) -> None:
        """Validate the request before the upgrade; raise CondaSvcError for a clear HTTP error."""

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        # the origin first (tornado checks it only after our own checks would have answered)
        origin = self.request.headers.get("Origin") or self.request.headers.get("Sec-Websocket-Origin")
        if origin is not None and not self.check_origin(origin):
            raise web.HTTPError(403, "Cross-origin WebSocket connections are not allowed.")
        try:
            await self.prepare_socket(*args, **kwargs)
        except CondaSvcError as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().open(*args, **kwargs)
        # Small messages must leave at once: with Nagle's algorithm a second push waits for the client's
        # delayed ACK of the first (~40 ms).
        self.set_nodelay(True)

    def send(self, text: str) -> Optional[Any]:
        """Write one message; None if the socket is already closed (dropped quietly)."""
        if self.ws_connection is None or self.ws_connection.is_closing():
            raise websocket.WebSocketClosedError()
        return self.write_message(text)

    def on_message(self, message: Any) -> None:
        """Clients have nothing to say; messages are ignored."""


class EventsWebSocket(CondaSvcWebSocket):
    """``condasvc/api/events``: snapshot on connect, then pushed changes of every managed service, on every host
    (each message and service carries ``host``; a ``host`` message tells a host's state change)."""

    client: Any = None

    @property
    def hub(self) -> Any:
        return self.settings["condasvc_events"]  # every host's (fleet.FleetEvents over the local StatusHub)

    async def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().open(*args, **kwargs)
        self.client = await self.hub.connect(self.send)
        if self.ws_connection is None:  # closed while the snapshot was being taken
            self.hub.disconnect(self.client)

    def on_close(self) -> None:
        if self.ping_callback is not None:
            self.ping_callback.stop()
        if self.client is not None:
            self.hub.disconnect(self.client)
            self.client = None


handlers = [(r"/condasvc/api/events", EventsWebSocket)]
