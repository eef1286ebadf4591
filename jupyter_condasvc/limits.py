"""Size limits on what a request may carry, checked before anything is escaped or written.

Why each limit exists:

* systemd reads a unit file line by line and refuses a line longer than
  1 MiB (``LONG_LINE_MAX``; the unit then fails to load with "No buffer
  space available").  ``ExecStart=`` holds the whole command line, escaped:
  a control character takes four bytes (``\\xNN``), so the raw argv must stay
  well under a quarter of that.
* the kernel refuses one argument longer than 128 KiB (``MAX_ARG_STRLEN``)
  and an argv plus environment over ``ARG_MAX`` ("Argument list too long").
* escaping and writing are done on the event loop: a cap on the input is a
  cap on that work.

Pure: the numbers come from the app's traitlets (``CondaSvcApp.max_*``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Tuple

from .errors import PayloadTooLarge


@dataclass(frozen=True)
class Limits:
    #: Bytes of one request body (JSON).
    max_body_bytes: int = 1 << 20
    #: UTF-8 bytes of one argument, path or other single string in a spec.
    max_argument_bytes: int = 32 << 10
    #: UTF-8 bytes of argv + args together.
    max_argv_bytes: int = 128 << 10
    #: Number of environment variables.
    max_variables: int = 1000
    #: UTF-8 bytes of all environment variables (names and values) together.
    max_environment_bytes: int = 128 << 10


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_body(size: int, limits: Limits) -> None:
    if size > limits.max_body_bytes:
        raise PayloadTooLarge(
            f"The request body is {size} bytes; at most {limits.max_body_bytes} are accepted "
            "(CondaSvcApp.max_body_bytes).",
            field="body",
        )


def _strings(spec: Any) -> Iterable[Tuple[str, str]]:
    for name in ("env", "path", "cwd", "output", "schedule", "description", "memory_max", "cpu_quota"):
        value = getattr(spec, name, None)
        if isinstance(value, str):
            yield name, value
    for i, value in enumerate(spec.argv or ()):
        yield f"argv[{i}]", value
    for i, value in enumerate(spec.args or ()):
        yield f"args[{i}]", value


def check_spec(spec: Any, limits: Limits) -> None:
    """Raise 413 (naming the field) when a validated spec exceeds a limit."""
    for field, value in _strings(spec):
        size = _size(value)
        if size > limits.max_argument_bytes:
            top = field.split("[", 1)[0]
            raise PayloadTooLarge(
                f"{field} is {size} bytes; one value may have at most {limits.max_argument_bytes} "
                "(CondaSvcApp.max_argument_bytes).",
                field=top,
            )
    total = sum(_size(a) for a in [*(spec.argv or ()), *(spec.args or ())])
    if total > limits.max_argv_bytes:
        raise PayloadTooLarge(
            f"argv and args are {total} bytes together; at most {limits.max_argv_bytes} are accepted "
            "(CondaSvcApp.max_argv_bytes).",
            field="argv" if spec.argv else "args",
        )
    environment = spec.environment or {}
    if len(environment) > limits.max_variables:
        raise PayloadTooLarge(
            f"environment sets {len(environment)} variables; at most {limits.max_variables} are accepted "
            "(CondaSvcApp.max_variables).",
            field="environment",
        )
    env_total = sum(_size(k) + 1 + _size(v) for k, v in environment.items())
    if env_total > limits.max_environment_bytes:
        raise PayloadTooLarge(
            f"environment is {env_total} bytes; at most {limits.max_environment_bytes} are accepted "
            "(CondaSvcApp.max_environment_bytes).",
            field="environment",
        )
