"""``GET condasvc/api/doctor``: the checks of ``jupyter condasvc doctor``, each with its fix; ``POST host/linger``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..doctor import run_doctor
from ..errors import InvalidSpec
from ..linger import set_linger
from .base import CondaSvcHandler


class DoctorHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await run_doctor(self.services))


class LingerHandler(CondaSvcHandler):
    """``POST host/linger`` ``{"enabled": bool}``: linger for the server's own user, through logind."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
            raise InvalidSpec('The body must be {"enabled": true} or {"enabled": false}.', field="enabled")
        result = await set_linger(body["enabled"])
        self.settings["condasvc_host"].invalidate()
        self.reply(result)


handlers = [(r"/condasvc/api/doctor", DoctorHandler), (r"/condasvc/api/host/linger", LingerHandler)]
