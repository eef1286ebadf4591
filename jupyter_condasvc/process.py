"""The one subprocess seam, for what exists only as a command: ``systemd-analyze calendar``
(schedule.check_calendar), ``conda activate``'s scripts (activation.snapshot) and doctor's import probe."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Dict, Optional, Tuple


async def run(
    argv: Sequence[str],
    *,
    timeout: float = 15.0,
    env: Optional[Dict[str, str]] = None,
    clean_env: Optional[Dict[str, str]] = None,
) -> Tuple[int, str, str]:
    """Run ``argv`` without blocking the loop; return (exit code, stdout, stderr).

    ``env`` adds to the server's environment; ``clean_env`` replaces it.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(clean_env) if clean_env is not None else {**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
