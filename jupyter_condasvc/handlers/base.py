"""The base handler: the auth resource and the one place errors become statuses.

Every verb is authenticated (``APIHandler``) and authorised (``@authorized``
against the ``condasvc`` resource: GET is "read", the rest "write"/"delete").
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from ..errors import CondaSvcError, InvalidSpec
from ..limits import check_body

if TYPE_CHECKING:
    from ..app import CondaSvcApp

AUTH_RESOURCE = "condasvc"


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: stored, they would make answers invalid JSON."""
    raise ValueError(f"{name} is not a JSON value")


class CondaSvcHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def services(self) -> Any:
        return self.settings["condasvc_services"]

    def target(self) -> Any:
        """The service layer of the request's ``?host=`` (default ``local``): this server's, or a remote host's
        with the same methods (:mod:`jupyter_condasvc.fleet`); an unknown host is a 400 naming the known ones."""
        return self.settings["condasvc_fleet"].target(self.get_query_argument("host", None))

    @property
    def condasvc_app(self) -> CondaSvcApp:
        """``extensionapp`` with its settings typed (jupyter_server's mixin types it as the ExtensionApp base)."""
        return cast("CondaSvcApp", self.extensionapp)

    def json_body(self) -> Any:
        body = self.request.body or b"null"
        check_body(len(body), self.services.defaults.limits)
        try:
            return json.loads(body, parse_constant=_no_constant)
        except RecursionError:
            raise InvalidSpec("The request body is nested too deeply.", field="body") from None
        except ValueError as exc:
            raise InvalidSpec(f"The request body is not valid JSON: {exc}.", field="body") from None

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
