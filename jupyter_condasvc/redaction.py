"""A stored spec as the API shows it (no pydantic here: listing services needs only this)."""
from __future__ import annotations

from typing import Any, Dict


def redact(spec: Dict[str, Any]) -> Dict[str, Any]:
    """A spec as the API shows it: secret values are null."""
    secrets = set(spec.get("secrets") or ())
    if not secrets:
        return spec
    out = dict(spec)
    out["environment"] = {k: (None if k in secrets else v) for k, v in (spec.get("environment") or {}).items()}
    return out
