"""A service's conda environment as an ``environment.yml``: at registration, now, and the drift."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import CondaSvcHandler
from .services import NAME


class ServiceEnvironmentHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.target().service_environment(name))


handlers = [(rf"/condasvc/api/services/{NAME}/environment", ServiceEnvironmentHandler)]
