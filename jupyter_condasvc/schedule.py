"""Schedules: systemd calendar expressions, checked by systemd itself."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any, Dict, List

from .errors import InvalidSpec
from .process import run

_STAMP = re.compile(r"^\s*(?:Next elapse|Iter\. #\d+):\s*\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\s*$")


def parse_calendar_output(text: str) -> Dict[str, Any]:
    """Read ``systemd-analyze calendar`` output (run with TZ=UTC)."""
    normalized = None
    runs: List[str] = []
    for line in text.splitlines():
        if line.strip().startswith("Normalized form:"):
            normalized = line.split(":", 1)[1].strip()
        m = _STAMP.match(line)
        if m:
            runs.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).isoformat())
    return {"normalized": normalized, "next_runs": runs}


async def check_calendar(expression: str, iterations: int = 3) -> Dict[str, Any]:
    """Validate ``expression`` with systemd's own parser; the next runs for preview.

    Raises InvalidSpec (field ``schedule``) with systemd's message.
    """
    if not expression.strip() or "\n" in expression or "\x00" in expression:
        raise InvalidSpec(
            "schedule must be one systemd calendar expression, e.g. 'daily' or 'Mon..Fri 09:00'.", field="schedule"
        )
    try:
        code, out, err = await run(
            ["systemd-analyze", "calendar", f"--iterations={iterations}", expression], env={"TZ": "UTC"}, timeout=10
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise InvalidSpec(f"schedule could not be checked with systemd-analyze: {exc}", field="schedule") from None
    if code != 0:
        reason = err.strip().splitlines()[-1] if err.strip() else "not a calendar expression"
        raise InvalidSpec(
            f"schedule: systemd says: {reason}. See `man systemd.time` (e.g. 'hourly', '*:0/15', 'Mon..Fri 09:00').",
            field="schedule",
        )
    return parse_calendar_output(out)
