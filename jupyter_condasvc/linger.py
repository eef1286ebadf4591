"""Linger for oneself: ``loginctl enable-linger`` without the command.

Asks systemd-logind on the system bus (``SetUserLinger`` for our own UID, not
interactive), which is what ``loginctl enable-linger`` does.  logind lets a
user change their own linger when polkit allows it (Debian's default: yes
from a login session).  Where logind is absent (containers, hosts not booted
with systemd) or refuses, the error says so and names the administrator's
command.  Returns the linger state as :func:`host.linger_enabled` reads it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict

from .errors import CondaSvcError, ManagerUnavailable, NotOwned
from .host import linger_enabled, user_name

LOGIND = "org.freedesktop.login1"
LOGIND_PATH = "/org/freedesktop/login1"
LOGIND_IFACE = "org.freedesktop.login1.Manager"
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
TIMEOUT = 25.0  # logind may wait on polkit


class LingerRefused(NotOwned):
    """logind (polkit) said no: only an administrator can change it."""


async def set_linger(enable: bool, bus_address: str = "") -> Dict[str, Any]:
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    user = user_name()
    admin = f"`sudo loginctl {'enable' if enable else 'disable'}-linger {user}`"
    address = bus_address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
    try:
        bus = await asyncio.wait_for(MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect(), TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - no system bus: no logind either
        raise ManagerUnavailable(
            f"Linger cannot be changed here: the system D-Bus ({address}) is not reachable ({exc}), so neither is "
            "systemd-logind. This host was not booted with systemd (a container?): services start when the user "
            "manager starts, not at boot."
        ) from None
    try:
        reply = await asyncio.wait_for(
            bus.call(
                Message(
                    destination=LOGIND,
                    path=LOGIND_PATH,
                    interface=LOGIND_IFACE,
                    member="SetUserLinger",
                    signature="ubb",
                    body=[os.getuid(), enable, False],
                )
            ),
            TIMEOUT,
        )
    except asyncio.TimeoutError:
        raise ManagerUnavailable(f"systemd-logind did not answer within {TIMEOUT:g} s; try {admin}.") from None
    finally:
        bus.disconnect()
    if reply is not None and reply.message_type is MessageType.ERROR:
        name = reply.error_name or ""
        detail = reply.body[0] if reply.body else name
        if name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
            raise ManagerUnavailable(
                "Linger cannot be changed here: systemd-logind is not running (this host was not booted with systemd). "
                "Services start when the user manager starts, not at boot."
            )
        if name in (
            "org.freedesktop.DBus.Error.AccessDenied",
            "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ):
            raise LingerRefused(
                f"systemd-logind refused to change linger for {user} ({detail}). Users may change their own linger "
                f"only from a login session where polkit allows it; an administrator can run {admin}."
            )
        raise CondaSvcError(f"systemd-logind could not change linger: {detail}")
    enabled = await asyncio.to_thread(linger_enabled, user)
    return {"user": user, "enabled": enabled}
