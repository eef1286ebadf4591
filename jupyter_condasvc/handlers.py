"""REST handlers under ``{base_url}condasvc/api/``: thin by design.

Each verb parses the request, awaits one domain call and writes JSON.  The
base class maps domain errors to statuses in one place.  Every verb is
authenticated (``APIHandler``) and authorised (``@authorized`` against the
``condasvc`` resource: GET is "read", the rest "write"/"execute"/"delete").
"""
from __future__ import annotations

import json
import sys
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .errors import CondaSvcError, InvalidSpec
from .host import host_report

AUTH_RESOURCE = "condasvc"
NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})"


class CondaSvcHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def services(self) -> Any:
        return self.settings["condasvc_services"]

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as exc:
            raise InvalidSpec(f"The request body is not valid JSON: {exc}.") from None

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, CondaSvcError):
            self.log.info("condasvc: %s %s -> %s: %s", self.request.method, self.request.path, e.status, e.message)
            if not self._finished:
                self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, CondaSvcError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.to_json()))
            return
        super().write_error(status_code, **kwargs)


class EnvironmentsHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        refresh = self.get_query_argument("refresh", "0") in ("1", "true", "yes")
        envs = await self.settings["condasvc_finder"].list_environments(refresh=refresh)
        self.reply({"environments": [e.to_json() for e in envs]})


class ServicesHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"services": await self.services.list()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.services.create(self.json_body()), status=201)


class PreviewHandler(CondaSvcHandler):
    """Render the unit a spec would produce, writing nothing (POST: it takes a body)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.services.preview(self.json_body()))


class ServiceHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.services.get(name))

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        self.reply(await self.services.update(name, self.json_body()))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.services.delete(name)
        self.set_status(204)
        self.finish()


class ActionHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        self.reply(await self.services.act(name, action))


class UnitHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.services.unit_text(name))


class HostHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await host_report(self.settings["condasvc_systemd"]))


default_handlers = [
    (r"/condasvc/api/environments", EnvironmentsHandler),
    (r"/condasvc/api/services", ServicesHandler),
    (r"/condasvc/api/preview", PreviewHandler),
    (rf"/condasvc/api/services/{NAME}", ServiceHandler),
    (rf"/condasvc/api/services/{NAME}/unit", UnitHandler),
    (rf"/condasvc/api/services/{NAME}/(?P<action>[a-z-]+)", ActionHandler),
    (r"/condasvc/api/host", HostHandler),
]
