"""A stored spec as the API shows it (no pydantic here: listing services needs only this)."""

from __future__ import annotations

from typing import Any, Dict


def redact(spec: Dict[str, Any]) -> Dict[str, Any]:
    """A spec as the API shows it: secret values are null, a health check URL's credentials '***'."""
    out = dict(spec)
    check = spec.get("health_check")
    if isinstance(check, dict) and isinstance(check.get("url"), str):
        from .health import redact_url

        out["health_check"] = {**check, "url": redact_url(check["url"])}
    secrets = set(spec.get("secrets") or ())
    if not secrets:
        return out
    out["environment"] = {k: (None if k in secrets else v) for k, v in (spec.get("environment") or {}).items()}
    return out
