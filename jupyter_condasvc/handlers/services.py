"""REST handlers for environments, services, unit previews and the host report."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..actions import ACTION_PATTERN, ACTIONS
from ..errors import NotFound
from ..views import etag_matches
from .base import CondaSvcHandler

NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})"


class EnvironmentsHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        refresh = self.get_query_argument("refresh", "0") in ("1", "true", "yes")
        self.reply(await self.target().environments(refresh))


class ServicesHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        body, etag = await self.settings["condasvc_fleet"].list_json(self.get_query_argument("host", None))
        self.set_header("ETag", etag)
        if etag_matches(self.request.headers.get("If-None-Match"), etag):
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.target().create(self.json_body()), status=201)


class PreviewHandler(CondaSvcHandler):
    """Render the unit a spec would produce, writing nothing (POST: it takes a body)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.target().preview(self.json_body()))


class ServiceHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(await self.target().get_json(name))

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        self.reply(await self.target().update(name, self.json_body()))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.target().delete(name)
        self.set_status(204)
        self.finish()


class ActionHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        self.reply(await self.target().act(name, action))


class UnitHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(await self.target().unit_json(name))


class HostHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(await self.settings["condasvc_host"].get_json())


class UnknownRouteHandler(CondaSvcHandler):
    """Anything else under condasvc/api/ (a name the route pattern refuses, an unknown action): a JSON 404."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        raise NotFound(
            f"No such endpoint: {self.request.path}. A service name is 1-64 letters, digits, '-', '_' or '.', "
            f"starting with a letter or digit; the actions on a service are {', '.join(ACTIONS)}."
        )

    post = patch = put = delete = get


handlers = [
    (r"/condasvc/api/environments", EnvironmentsHandler),
    (r"/condasvc/api/services", ServicesHandler),
    (r"/condasvc/api/preview", PreviewHandler),
    (rf"/condasvc/api/services/{NAME}", ServiceHandler),
    (rf"/condasvc/api/services/{NAME}/unit", UnitHandler),
    (rf"/condasvc/api/services/{NAME}/(?P<action>{ACTION_PATTERN})", ActionHandler),
    (r"/condasvc/api/host", HostHandler),
]
