"""Unit rendering: escaping rules and the shape of the unit (pure, fast)."""

import pytest

from helpers import unit_plan
from jupyter_condasvc.errors import InvalidSpec
from jupyter_condasvc.units import (
    MARKER,
    is_managed,
    plain_value,
    quote_assignment,
    quote_exec_word,
    render_environment_file,
    render_exec,
    render_service,
)

plan = unit_plan


@pytest.mark.parametrize(
    "word,quoted",
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("100%", '"100%%"'),
        ("%h", '"%%h"'),
        ("$HOME", '"$HOME"'),
        ("tab\there", '"tab\\x09here"'),
        (";", '";"'),
        ("a;b", '"a;b"'),
    ],
)
def test_exec_word_quoting(word, quoted):
    assert quote_exec_word(word) == quoted


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_exec_word_refuses_line_breaks(bad):
    with pytest.raises(InvalidSpec):
        quote_exec_word(bad)


def test_environment_assignment_escapes_specifiers_not_dollars():
    assert quote_assignment("PATH", "/a b/%i:$X") == '"PATH=/a b/%%i:$X"'


def test_plain_value_refuses_what_the_parser_would_change():
    assert plain_value("/srv/100% data", "cwd") == "/srv/100%% data"
    for bad in (" lead", "trail ", "ends\\", "two\nlines"):
        with pytest.raises(InvalidSpec):
            plain_value(bad, "cwd")


def test_render_follows_the_recipe():
    text = render_service(plan(memory_max="512M", cpu_quota="50%"), base_path="/usr/bin:/bin")
    lines = text.splitlines()
    assert lines[0] == MARKER
    assert 'ExecStart=:"/envs/ml/bin/python" "-u" "/home/u/train.py"' in lines
    assert 'Environment="PATH=/envs/ml/bin:/usr/bin:/bin"' in lines
    assert 'Environment="CONDA_PREFIX=/envs/ml"' in lines
    assert 'Environment="CONDA_DEFAULT_ENV=ml"' in lines
    assert 'Environment="PYTHONUNBUFFERED=1"' in lines
    assert "EnvironmentFile=-/home/u/.local/share/jupyter_condasvc/train.env" in lines
    assert "Restart=on-failure" in lines and "RestartSec=5" in lines
    assert "StartLimitBurst=5" in lines and "StartLimitIntervalSec=60" in lines
    assert "SyslogIdentifier=train" in lines and "StandardOutput=journal" in lines
    assert "MemoryMax=512M" in lines and "CPUQuota=50%" in lines
    assert "MemoryLimit" not in text
    assert "WantedBy=default.target" in lines
    assert "Type=exec" in lines
    # StartLimit* belong in [Unit] (systemd ignores them in [Service]).
    assert text.index("StartLimitBurst") < text.index("[Service]")
    assert is_managed(text)


def test_notebook_plan_is_notify():
    text = render_service(plan(notify=True))
    assert "Type=notify" in text and "NotifyAccess=main" in text


def test_is_managed_needs_both_marks():
    assert not is_managed("[Unit]\nDescription=hand written\n")
    assert not is_managed(MARKER + "\n[Unit]\n")


def test_environment_file_quoting():
    text = render_environment_file({"B": "it's", "A": "plain $HOME", "C": 'q"\\`$x', "D": "multi\nline"})
    lines = text.splitlines()
    assert "A='plain $HOME'" in lines
    assert 'B="it\'s"' in lines
    assert 'C="q\\"\\\\\\`\\$x"' in lines
    assert 'D="multi' in lines


def test_stderr_wrapper_goes_before_the_program_and_is_read_back():
    from jupyter_condasvc.units import stderr_wrapper, user_argv

    text = render_service(plan(stderr_wrapper=stderr_wrapper("/usr/bin/systemd-cat", "train", "err")))
    assert (
        'ExecStart=:"/usr/bin/systemd-cat" "--identifier=train" "--stderr-priority=err" "--" "/envs/ml/bin/python" "-u"'
        in text
    )
    words = [*stderr_wrapper("/usr/bin/systemd-cat", "tr%ain", "err"), "/envs/ml/bin/python", "-u", "--", "x.py"]
    assert user_argv(words) == ["/envs/ml/bin/python", "-u", "--", "x.py"]
    assert user_argv(["/bin/echo", "--", "x"]) == ["/bin/echo", "--", "x"]
    rendered = render_exec(words)
    assert rendered.startswith(
        ':"/usr/bin/systemd-cat" "--identifier=tr%%ain" "--stderr-priority=err" "--" "/envs/ml/bin/python"'
    )


def test_run_end_line_lets_systemd_expand_only_its_own_variables():
    from jupyter_condasvc.units import render_run_end

    line = render_run_end(["/usr/bin/systemd-cat", "/bin/sh"])
    assert line.startswith('-"/usr/bin/systemd-cat" "--identifier=condasvc-run-end"')
    assert '"-c" "echo result=${SERVICE_RESULT} exit=${EXIT_CODE} status=${EXIT_STATUS}; exec sleep 0.2"' in line
    text = render_service(plan(run_end_logger=["/usr/bin/systemd-cat", "/bin/sh"]))
    assert text.count("\nExecStopPost=") == 1
