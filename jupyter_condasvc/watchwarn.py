"""restart_on_change: what to tell the user when its ``.path`` unit is not watching (pure)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

#: systemd's Result of a failed .path unit -> why, and what to do (after "... is not watching FILE: ")
_CAUSES = {
    "resources": (
        "systemd could not set up the file watch, usually because your user ran out of inotify instances or "
        "watches (fs.inotify.max_user_instances, fs.inotify.max_user_watches; every program that watches files "
        "uses them). Close programs that watch many files or raise the limit (as root: sysctl "
        "fs.inotify.max_user_instances=512), then start the service again"
    ),
    "unit-start-limit-hit": (
        "the file changed too often in a short time and its restarter hit systemd's start limit. Start the "
        "service again to watch again"
    ),
    "trigger-limit-hit": (
        "the file changed too often in a short time (systemd's trigger limit). Start the service again to watch again"
    ),
}


def path_unit_warning(path_unit: str, props: Mapping[str, Any], watched: Optional[str]) -> Optional[str]:
    """The warning for a service whose restart_on_change watch (``path_unit``, with these properties) failed.

    None while it watches (or has not been loaded, e.g. just switched off).
    """
    if props.get("ActiveState") != "failed":
        return None
    result = str(props.get("Result") or "")
    cause = _CAUSES.get(
        result,
        f"it failed (result '{result or 'unknown'}'; see journalctl --user -u {path_unit}). Start the service "
        "again to retry",
    )
    return (
        f"restart_on_change is not watching {watched or 'the file'}: {cause} (or edit it); {path_unit} is "
        "started again then."
    )
