"""Times as the API shows them: microseconds since the epoch (systemd's and the journal's unit) as ISO 8601, UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: systemd's "not set" for a 64-bit value (a time that never comes, a reading that is not available).
U64_MAX = 2**64 - 1


def u64_or_none(value: Optional[int]) -> Optional[int]:
    """A 64-bit property (MemoryCurrent, CPUUsageNSec...) or None when systemd says "not set"."""
    if value is None or value == U64_MAX:
        return None
    return int(value)


def usec_to_iso(usec: int) -> str:
    """``1795748858123456`` -> ``"2026-11-27T03:07:38.123456+00:00"`` (always with microseconds)."""
    return (_EPOCH + timedelta(microseconds=usec)).isoformat(timespec="microseconds")


def timestamp_iso(value: Optional[int]) -> Optional[str]:
    """A systemd timestamp property as :func:`usec_to_iso`, or None for 0 ("never") and ``U64_MAX`` ("not set")."""
    if not value or value == U64_MAX:
        return None
    return usec_to_iso(int(value))
