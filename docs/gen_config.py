"""Write docs/configuration.md from the traitlets of CondaSvcApp, EnvironmentFinder and SystemdManager.

python docs/gen_config.py          # write it
python docs/gen_config.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _freshness import main  # noqa: E402

INTRO = """\
# Configuration reference

Every setting is a [traitlet](https://traitlets.readthedocs.io/) with
`config=True`. The server extension and the `jupyter condasvc` CLI read the
same places, so a service created from either behaves the same:

- `jupyter_server_config.py` (or `.json`, or `jupyter_server_config.d/*.json`)
  in any Jupyter config directory (`jupyter --paths` lists them; usually
  `~/.jupyter`), or `jupyter_condasvc_config.py` / `.json` next to it:

  ```python
  c.CondaSvcApp.unit_prefix = "svc-"
  c.CondaSvcApp.allowed_roots = ["/srv/models"]
  c.EnvironmentFinder.conda_roots = ["/opt/miniforge3"]
  c.SystemdManager.job_timeout = 300
  ```

- the command line, for one run: `jupyter lab --CondaSvcApp.unit_prefix=svc-`
  or `jupyter condasvc list --CondaSvcApp.unit_prefix=svc-`.

`jupyter server --help-all` prints the same list with the current values.
"""

CLASSES = (
    (
        "jupyter_condasvc.app",
        "CondaSvcApp",
        "The server extension: where files go, defaults of new services, path policy, logs and status streaming.",
    ),
    (
        "jupyter_condasvc.conda",
        "EnvironmentFinder",
        "How conda environments are found (`CondaSvcApp.environment_finder_class` can swap the class).",
    ),
    (
        "jupyter_condasvc.systemd",
        "SystemdManager",
        "The D-Bus client of the systemd user manager (`CondaSvcApp.systemd_manager_class` can swap the class).",
    ),
)


def _default(cls, name, trait) -> str:
    import sys as _sys

    if name in getattr(cls, "_trait_default_generators", {}):
        return "computed (see description)"
    try:
        value = trait.default()
    except Exception:  # noqa: BLE001
        value = trait.default_value
    if isinstance(value, type):
        return f"`{value.__module__}.{value.__qualname__}`"
    if value == _sys.executable:
        return "the Python running Jupyter (`sys.executable`)"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    try:
        return f"`{json.dumps(value)}`"
    except TypeError:
        return f"`{value!r}`"


def _type(trait) -> str:
    name = type(trait).__name__
    values = getattr(trait, "values", None)
    if name in ("Enum", "CaselessStrEnum") and values:
        return "one of " + ", ".join(f"`{v}`" for v in values)
    if name == "List":
        inner = getattr(trait, "_trait", None)
        return f"List of {type(inner).__name__}" if inner is not None else "List"
    return name


def render() -> str:
    import importlib

    out = [INTRO]
    for module, name, blurb in CLASSES:
        cls = getattr(importlib.import_module(module), name)
        out.append(f"\n## {name}\n\n{blurb}\n\n| Setting | Type | Default | Description |\n| --- | --- | --- | --- |\n")
        for trait_name, trait in sorted(cls.class_own_traits(config=True).items()):
            help_text = " ".join((trait.help or "").split()).replace("|", "\\|")
            out.append(
                f"| `c.{name}.{trait_name}` | {_type(trait)} | {_default(cls, trait_name, trait)} | {help_text} |\n"
            )
    return "".join(out)


if __name__ == "__main__":
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # slow import, not needed
    sys.exit(main("gen_config.py", "the traitlets in jupyter_condasvc", HERE / "configuration.md", render))
