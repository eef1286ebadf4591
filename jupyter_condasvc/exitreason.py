"""Why a service's main process ended, in words: "killed for memory", not a bare "signal".

systemd says ``Result=oom-kill`` when the kernel's OOM killer ended a unit on
cgroup v2.  On cgroup v1 it cannot tell (``Result=signal``, status 9): a
SIGKILL of a service that has ``memory_max`` is then reported as killed for
memory, marked "most likely", since nothing else on such a host says more.
"""

from __future__ import annotations

import signal
from typing import Any, Dict, Optional

CLD_EXITED, CLD_KILLED, CLD_DUMPED = 1, 2, 3


def _signame(number: Any) -> str:
    try:
        return signal.Signals(int(number)).name
    except (TypeError, ValueError):
        return f"signal {number}"


def exit_reason(
    props: Dict[str, Any], memory_max: Optional[str] = None, memory_enforced: Optional[bool] = None
) -> Optional[str]:
    """One sentence for the last exit of the main process, or None (still running, never ran, exited 0).

    ``memory_enforced``: does this host apply memory limits to user units
    (:func:`host.enforced_controllers`)?  False rules the memory limit out as
    the killer; None (not known to the caller) keeps "most likely".
    """
    if props.get("Result") == "oom-kill":
        limit = f" (memory_max {memory_max})" if memory_max else ""
        return f"killed for memory: the kernel's OOM killer ended it at its memory limit{limit}."
    code, status = props.get("ExecMainCode"), props.get("ExecMainStatus")
    if code == CLD_KILLED and status == signal.SIGKILL and memory_max and memory_enforced is False:
        return f"killed by SIGKILL (not for memory: memory_max {memory_max} is not enforced on this host)."
    if code == CLD_KILLED and status == signal.SIGKILL and memory_max:
        return (
            f"killed for memory (most likely): SIGKILL while memory_max {memory_max} applied; this host's cgroup v1 "
            "gives no OOM result, and nothing else sends SIGKILL unless someone ran kill -9."
        )
    if code == CLD_KILLED:
        return f"killed by {_signame(status)}."
    if code == CLD_DUMPED:
        return f"crashed: {_signame(status)}, core dumped."
    if code == CLD_EXITED and status not in (0, None):
        return f"exited with status {status}."
    return None
