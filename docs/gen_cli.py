"""Write docs/cli.md from the argparse parser of `jupyter condasvc` (its help strings, choices, defaults).

python docs/gen_cli.py          # write it
python docs/gen_cli.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _freshness import main  # noqa: E402


def _cell(text: object) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`" + (" (optional)" if action.nargs == "?" else "")
    names = ", ".join(f"`{o}`" for o in action.option_strings)
    if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
        return names
    metavar = action.metavar or (("{" + ",".join(action.choices) + "}") if action.choices else action.dest.upper())
    return f"{names} `{metavar}`"


def _help(action: argparse.Action) -> str:
    # BooleanOptionalAction appends " (default: %(default)s)" on some Python versions only: never render it
    text = (action.help or "").replace(" (default: %(default)s)", "").replace("%%", "%")
    if action.choices and action.option_strings and "{" not in _flags(action):
        text += " (one of " + ", ".join(f"`{c}`" for c in action.choices) + ")"
    if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings and "default" not in text:
        text += f" (default: `{action.default}`)"
    if type(action).__name__ == "_AppendAction" and "repeat" not in text:
        text += " (repeatable)"
    return _cell(text)


def _table(parser: argparse.ArgumentParser, skip=("help",)) -> str:
    rows = [a for a in parser._actions if a.dest not in skip and not isinstance(a, argparse._SubParsersAction)]
    if not rows:
        return ""
    lines = ["| Argument | Meaning |", "| --- | --- |"]
    lines += [f"| {_flags(a)} | {_help(a)} |" for a in rows]
    return "\n".join(lines) + "\n"


def _usage(name: str, parser: argparse.ArgumentParser) -> str:
    positionals = [a for a in parser._actions if not a.option_strings]
    pos = " ".join(f"[{a.metavar}]" if a.nargs == "?" else str(a.metavar or a.dest) for a in positionals)
    extra = " [-- COMMAND/ARGS...]" if name in ("create", "edit", "unit") else ""
    return f"jupyter condasvc {name} [options] {pos}{extra}".replace("  ", " ").rstrip()


def render() -> str:
    from jupyter_condasvc.cli import EXIT_CODES, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    out = [
        "# CLI reference: `jupyter condasvc`\n\n",
        _cell(parser.description),
        "\n\n",
        "It drives the same service layer as the server extension, against your systemd user manager over D-Bus, "
        "so it needs no running Jupyter server. It reads the same configuration (see "
        "[configuration.md](configuration.md)); any `--Class.trait=value` argument overrides it for one run, "
        "e.g. `--CondaSvcApp.unit_prefix=svc-`.\n\n",
        "Human-readable tables by default; `--json` prints JSON on stdout (for `logs`, one entry per line; on an "
        'error, the error object). Progress ("starting…") and warnings go to stderr. Options that take a value '
        "starting with `-` need the `--opt=value` form; a script's own arguments can follow `--`.\n\n",
        "## Exit codes\n\n| Code | Meaning |\n| --- | --- |\n",
    ]
    out += [f"| {code} | {_cell(text)} |\n" for code, text in EXIT_CODES.items()]
    out.append(
        "\n## Options of every command\n\n"
        + _table(parser)
        + "\n## Commands\n\n| Command | What it does |\n| --- | --- |\n"
    )
    out += [f"| [`{name}`](#{name}) | {_cell(helps.get(name))} |\n" for name in sub.choices]
    common = {"json", "quiet", "verbose", "root"}
    for name, p in sub.choices.items():
        out.append(f"\n### {name}\n\n{_cell(p.description)}\n\n```\n{_usage(name, p)}\n```\n\n")
        skip = ("help", *common) if name != "jupyter-service" else ("help", "json", "quiet", "verbose")
        out.append(_table(p, skip=skip))
        if p.epilog:
            out.append(f"\n```\n{p.epilog.strip()}\n```\n")
    return "".join(out)


if __name__ == "__main__":
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    sys.exit(main("gen_cli.py", "the argparse parser in jupyter_condasvc/cli.py", HERE / "cli.md", render))
