"""Write docs/rest.md from jupyter_condasvc/openapi.yaml (the contract the tests check every answer against).

python docs/gen_rest.py          # write it
python docs/gen_rest.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _freshness import main  # noqa: E402

SPEC = HERE.parent / "jupyter_condasvc" / "openapi.yaml"
if "--spec" in sys.argv:  # render another copy (e.g. the committed one: git show HEAD:jupyter_condasvc/openapi.yaml)
    SPEC = Path(sys.argv[sys.argv.index("--spec") + 1])
METHODS = ("get", "post", "put", "patch", "delete")


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _type(schema: Dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    t = schema.get("type")
    types = t if isinstance(t, list) else [t] if t else []
    parts = []
    for one in types:
        if one == "array":
            items = schema.get("items") or {}
            parts.append(f"array of {_type(items)}" if items else "array")
        else:
            parts.append(str(one))
    text = " or ".join(parts) or "any"
    if schema.get("properties") and "array" not in types:
        text += " {" + ", ".join(f"`{k}`: {_type(v)}" for k, v in schema["properties"].items()) + "}"
    if schema.get("enum"):
        text += " (" + ", ".join(f"`{v}`" for v in schema["enum"] if v is not None) + ")"
    return text


def _properties(schema: Dict[str, Any], prefix: str = "", depth: int = 0) -> List[str]:
    rows = []
    required = set(schema.get("required") or [])
    for name, prop in (schema.get("properties") or {}).items():
        key = f"{prefix}{name}"
        rows.append(
            f"| `{key}` | {_type(prop)} | {'yes' if name in required else ''} | {_one_line(prop.get('description'))} |"
        )
        if depth < 2 and "properties" in prop:
            rows.extend(_properties(prop, key + ".", depth + 1))
        items = prop.get("items") or {}
        if depth < 2 and "properties" in items:
            rows.extend(_properties(items, key + "[].", depth + 1))
    return rows


def _content_type(body: Dict[str, Any]) -> str:
    content = body.get("content") or {}
    parts = []
    for mime, media in content.items():
        parts.append(f"`{mime}` {_type(media.get('schema') or {})}")
    return "; ".join(parts)


def render() -> str:
    doc = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    responses = doc.get("components", {}).get("responses", {})
    out = [
        f"# REST API reference\n\n{doc['info']['description'].strip()}\n\n"
        "Every path is relative to the Jupyter server's base URL. The machine-readable contract is "
        "[`jupyter_condasvc/openapi.yaml`](../jupyter_condasvc/openapi.yaml).\n\n## Endpoints\n\n"
    ]
    out.append("| Method | Path | Summary |\n| --- | --- | --- |\n")
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                anchor = f"{method}-{path}".lower().replace("/", "").replace("{", "").replace("}", "").replace("_", "")
                out.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {_one_line(item[method].get('summary'))} |\n")
    for path, item in doc["paths"].items():
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            out.append(f"\n### {method.upper()} {path}\n\n{_one_line(op.get('summary'))}.\n")
            if op.get("description"):
                out.append(f"\n{op['description'].strip()}\n")
            params = [p for p in [*shared, *(op.get("parameters") or [])]]
            params = [
                doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in params
            ]
            if params:
                out.append("\n| Parameter | In | Type | Description |\n| --- | --- | --- | --- |\n")
                for p in params:
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {_type(p.get('schema') or {})} | "
                        f"{_one_line(p.get('description'))} |\n"
                    )
            if op.get("requestBody"):
                out.append(f"\nRequest body: {_content_type(op['requestBody'])}.\n")
            out.append("\n| Status | Meaning | Body |\n| --- | --- | --- |\n")
            for code, resp in op.get("responses", {}).items():
                if "$ref" in resp:
                    resp = responses[resp["$ref"].rsplit("/", 1)[1]]
                out.append(f"| {code} | {_one_line(resp.get('description'))} | {_content_type(resp) or '-'} |\n")
    out.append("\n## Schemas\n")
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        out.append(f"\n### {name}\n\n")
        if schema.get("description"):
            out.append(f"{_one_line(schema['description'])}\n\n")
        out.append("| Field | Type | Required | Description |\n| --- | --- | --- | --- |\n")
        out.append("\n".join(_properties(schema)) + "\n")
    return "".join(out)


if __name__ == "__main__":
    sys.exit(main("gen_rest.py", "jupyter_condasvc/openapi.yaml", HERE / "rest.md", render))
