"""Run history of a service: ``services/{name}/runs``, one run, its log, its executed notebook."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidSpec
from .base import CondaSvcHandler
from .services import NAME

RUN = r"(?P<run_id>[^/]+)"


def _int_arg(handler: CondaSvcHandler, key: str, default: int, low: int, high: int) -> int:
    raw = handler.get_query_argument(key, None)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError:
        raise InvalidSpec(f"{key} must be a whole number, not '{raw}'.", field=key) from None
    if not low <= value <= high:
        raise InvalidSpec(f"{key} must be between {low} and {high}.", field=key)
    return value


class RunsHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.target().runs(name, _int_arg(self, "limit", 50, 1, 1000)))


class RunHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, run_id: str) -> None:
        self.reply(await self.target().run(name, run_id))


class RunLogHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, run_id: str) -> None:
        n = _int_arg(self, "n", 1000, 0, self.condasvc_app.log_page_max)
        self.reply(await self.target().run_logs(name, run_id, n))


class RunNotebookHandler(CondaSvcHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, run_id: str) -> None:
        self.reply(await self.target().run_notebook(name, run_id))


handlers = [
    (rf"/condasvc/api/services/{NAME}/runs", RunsHandler),
    (rf"/condasvc/api/services/{NAME}/runs/{RUN}", RunHandler),
    (rf"/condasvc/api/services/{NAME}/runs/{RUN}/logs", RunLogHandler),
    (rf"/condasvc/api/services/{NAME}/runs/{RUN}/notebook", RunNotebookHandler),
]
