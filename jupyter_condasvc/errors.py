"""Domain errors.

Domain modules raise these; the one base handler maps them to HTTP statuses
(see ``handlers.base``).  Messages are sentences a user can act on.
"""

from __future__ import annotations

from typing import Optional


class CondaSvcError(Exception):
    """Base class: ``status`` is the HTTP status the API answers with."""

    status = 500

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        out = {"message": self.message, "reason": type(self).__name__}
        if self.field is not None:
            out["field"] = self.field
        return out


class InvalidSpec(CondaSvcError):
    """Bad input: names the offending field."""

    status = 400


class PayloadTooLarge(InvalidSpec):
    """Input over a documented size limit: names the field and the limit."""

    status = 413


class NotFound(CondaSvcError):
    status = 404


class EnvironmentNotFound(NotFound):
    """No conda environment with that name or prefix."""


class ServiceNotFound(NotFound):
    pass


class NotOwned(CondaSvcError):
    """The unit exists but was not created by this extension."""

    status = 403


class Conflict(CondaSvcError):
    status = 409


class ManagerUnavailable(CondaSvcError):
    """The user's systemd manager (or its D-Bus) cannot be reached."""

    status = 503


class JobFailed(CondaSvcError):
    """A start/stop/restart job finished with a result other than ``done``."""

    status = 409
