"""Check API responses against the OpenAPI document shipped in the package."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import yaml
from jsonschema import Draft202012Validator

import jupyter_condasvc

SPEC_PATH = Path(jupyter_condasvc.__file__).parent / "openapi.yaml"


@lru_cache(maxsize=1)
def document() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def _match(path: str) -> Optional[tuple[str, dict]]:
    doc = document()
    candidates = []
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            candidates.append((template.count("{"), template, item))
    if not candidates:
        return None
    _, template, item = min(candidates)  # the most literal template wins
    return template, item


def check_response(method: str, path: str, code: int, body: Any) -> None:
    """Raise AssertionError if the response is not what the document says."""
    found = _match(path)
    assert found is not None, f"{path} is not in openapi.yaml"
    template, item = found
    op = item.get(method.lower())
    assert op is not None, f"{method} {template} is not in openapi.yaml"
    responses = op["responses"]
    assert str(code) in responses, f"{method} {template} answered {code}, which openapi.yaml does not list"
    response = responses[str(code)]
    if "$ref" in response:
        response = document()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = response.get("content", {}).get("application/json")
    if content is None:
        assert body is None, f"{method} {template} {code} should have no body"
        return
    schema = dict(content["schema"], components=document()["components"])
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{method} {template} {code}: {errors[0].message} at {list(errors[0].absolute_path)}"
