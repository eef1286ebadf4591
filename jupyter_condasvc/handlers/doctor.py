"""``GET condasvc/api/doctor``: the checks of ``jupyter condasvc doctor``, each with its fix."""
from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..doctor import run_doctor
from .base import CondaSvcHandler


class DoctorHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await run_doctor(self.services))


handlers = [(r"/condasvc/api/doctor", DoctorHandler)]
