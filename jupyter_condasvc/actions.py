"""What can be done to a service once it exists: the one list the service layer, the API route and the CLI use.

Kept apart (no imports) so the CLI can build its parser without loading the service layer.
"""

from __future__ import annotations

import re

#: ``POST services/{name}/{action}``, ``jupyter condasvc <action> NAME``, ``ServiceManager.act``.
ACTIONS = (
    "start",
    "stop",
    "restart",
    "enable",
    "disable",
    "reset-failed",
    "run-now",
    "pause",
    "resume",
    "reset-and-start",
)

#: A regular expression matching exactly one action (for the API's route).
ACTION_PATTERN = "|".join(re.escape(a) for a in ACTIONS)

#: Actions a caller shares with the same action of the same service when that one is queued and has not begun
#: (ServiceManager.act): it begins after both were asked for, so it does what each asked.
COALESCED_ACTIONS = ("start", "stop", "restart")
