"""sd_notify(3) without libsystemd: READY=1, STATUS=..., WATCHDOG=1 to $NOTIFY_SOCKET.

Shared by the notebook runner and the health prober, both of which run
inside a service started by systemd.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Optional


def notify(message: str, *, env: Optional[Mapping[str, str]] = None) -> bool:
    """Send one datagram to ``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract namespace).

    Returns False when there is no socket we speak to (unset, vsock) or the
    send failed; never raises: a lost status line must not stop a service.
    """
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8", "replace"), address)
    except OSError:
        return False
    return True
