"""``GET condasvc/api/hosts``: every host's reachability, systemd, linger, journal and doctor checks."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidSpec
from .base import CondaSvcHandler

_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


class HostsHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        raw = self.get_query_argument("refresh", "")
        if raw.lower() not in _FLAGS:
            raise InvalidSpec("refresh must be 1 or 0.", field="refresh")
        self.reply(await self.settings["condasvc_hosts"].report(refresh=_FLAGS[raw.lower()]))


handlers = [(r"/condasvc/api/hosts", HostsHandler)]
