"""The CLI builds only the parser of the command it runs: the same answers as the whole parser."""

from __future__ import annotations

import pytest

from jupyter_condasvc.cli import split_argv
from jupyter_condasvc.cli_parser import build_parser, command_in

ARGVS = [
    ["list"],
    ["--json", "list"],
    ["--host", "gpu2", "list"],
    ["--root", "/tmp", "show", "api", "--unit"],
    ["start", "api", "-q"],
    ["logs", "api", "-n", "50", "--since", "-5m", "--grep", "x"],
    ["create", "train", "--env", "ml", "--path", "t.py", "--var", "A=1", "--start"],
    ["edit", "train", "--unset", "schedule", "--no-restart-on-change"],
    ["reset-and-start", "api"],
    ["jupyter-service", "--port", "9999", "--no-enable"],
    ["export-env", "--env", "ml"],
    ["runs", "api", "--limit", "3"],
    ["doctor"],
    ["hosts"],
]


@pytest.mark.parametrize("argv", ARGVS)
def test_one_commands_parser_parses_as_the_whole_one(argv):
    ours, _, _ = split_argv(argv)
    assert command_in(ours) == next(a for a in ours if not a.startswith("-") and a not in ("gpu2", "/tmp"))
    assert vars(build_parser(command_in(ours)).parse_args(ours)) == vars(build_parser().parse_args(ours))


def test_help_version_and_unknown_commands_get_the_whole_parser(capsys):
    assert command_in(["--help"]) is None and command_in(["--version"]) is None
    assert command_in(["logs", "-h"]) == "logs"  # the command's own help: its parser is built whole (below)
    assert command_in(["--json"]) is None and command_in(["--host", "list"]) is None
    whole = build_parser().format_help()
    assert build_parser(None).format_help() == whole
    assert build_parser("no-such-command").format_help() == whole  # its error lists every command
    with pytest.raises(SystemExit) as exc:
        build_parser("bogus").parse_args(["bogus"])
    assert exc.value.code == 2 and "show" in capsys.readouterr().err
    # a command's own help and usage errors are its own parser's, the same either way
    assert build_parser("logs")._subparsers._group_actions[0].choices["logs"].format_help() == (
        build_parser()._subparsers._group_actions[0].choices["logs"].format_help()
    )
