"""The notebook runner, run as systemd runs it: a real subprocess, a real kernel.

Every test starts ``python -m jupyter_condasvc.runner`` as a child process on
a notebook written with nbformat, with the kernel started from a conda-layout
test environment (``condaenv.make_conda_env``), and checks what systemd would
see: the exit status, the ``<N>``-prefixed journal lines on stdout, sd_notify
datagrams on a real ``AF_UNIX``/``SOCK_DGRAM`` socket, the executed copy, and
that no kernel process outlives the runner.
"""

from __future__ import annotations

import json
import keyword
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from condaenv import make_conda_env
from jupyter_condasvc.errors import InvalidSpec
from jupyter_condasvc.runner import INJECTED_TAG, MAX_STREAM_LINES, TRUNCATED_MARKER, inject_parameters, notify

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env_python(tmp_path_factory) -> Path:
    """``<prefix>/bin/python`` of a conda-layout env that can run ipykernel."""
    prefix = make_conda_env(tmp_path_factory.mktemp("envs") / "nbenv", ipykernel=True)
    return prefix / "bin" / "python"


def write_nb(path: Path, *sources: str, tags: Optional[dict[int, list[str]]] = None) -> Path:
    cells = []
    for i, src in enumerate(sources):
        if src.startswith("# md "):
            cells.append(new_markdown_cell(src[5:]))
        else:
            cells.append(new_code_cell(src, metadata={"tags": (tags or {}).get(i, [])}))
    nbformat.write(new_notebook(cells=cells), path)
    return path


def runner_cmd(python: Path, notebook: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter_condasvc.runner",
        "--python",
        str(python),
        "--notebook",
        str(notebook),
        *extra,
    ]


def runner_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run(cmd: Sequence[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=runner_env(**env), capture_output=True, text=True, timeout=timeout)


def lines_of(stdout: str) -> list[str]:
    return stdout.splitlines()


def outputs_text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "".join(parts)


def assert_in_order(lines: Sequence[str], expected: Sequence[str]) -> None:
    """``expected`` appear among ``lines`` in this order (others may be between)."""
    it = iter(lines)
    for want in expected:
        for line in it:
            if line == want:
                break
        else:
            pytest.fail(f"{want!r} missing or out of order in:\n" + "\n".join(lines))


def drain(sock: socket.socket) -> list[str]:
    """Every datagram already queued on ``sock``."""
    sock.setblocking(False)
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone for our purpose
    except FileNotFoundError:
        return False


# --------------------------------------------------------------------------


def test_runs_cells_and_writes_prefixed_lines_and_executed_copy(env_python, tmp_path):
    """(a) exit 0, journal levels in order, the executed copy has the outputs; the kernel's cwd is ours."""
    nb = write_nb(
        tmp_path / "three.ipynb",
        "# md A title",
        "import os, sys\nprint('hello from cell 1', flush=True)\nprint('to stderr', file=sys.stderr, flush=True)",
        "print('cwd', os.getcwd())\n40 + 2",
        f"for i in range({MAX_STREAM_LINES * 2}):\n    print('line', i)\n'done'",
    )
    work = tmp_path / "work"
    work.mkdir()
    proc = run(runner_cmd(env_python, nb), cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = lines_of(proc.stdout)
    assert_in_order(
        lines,
        [
            "<6>cell 1/3 started: import os, sys",
            "<6>hello from cell 1",
            "<3>to stderr",
            "<6>cell 2/3 started: print('cwd', os.getcwd())",
            f"<6>cwd {work}",
            "<6>42",
            "<6>line 0",
            f"<6>line {MAX_STREAM_LINES * 2 - 1}",
            "<6>'done'",
        ],
    )
    assert lines[-1].startswith("<5>finished: 3 cells in ")
    assert lines[0].startswith(f"<5>kernel started: {env_python} ")
    assert all(line[:3] in ("<3>", "<5>", "<6>") for line in lines), lines
    # The journal has every line; the executed copy keeps the tail of a long stream.
    assert sum(1 for line in lines if line.startswith("<6>line ")) == MAX_STREAM_LINES * 2

    out = nbformat.read(tmp_path / "three.out.ipynb", as_version=4)
    code = [c for c in out.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    assert outputs_text(code[0]) == "hello from cell 1\nto stderr\n"
    assert outputs_text(code[1]) == f"cwd {work}\n42"
    long_text = code[2].outputs[0].text
    assert long_text.startswith(TRUNCATED_MARKER)
    assert long_text.count("\n") <= MAX_STREAM_LINES * 1.1 + 1
    assert long_text.endswith(f"line {MAX_STREAM_LINES * 2 - 1}\n")
    assert out.metadata.language_info.name == "python"
    assert not list(tmp_path.glob(".three.out.ipynb.*")), "temporary files left behind"


def test_error_in_cell_two_fails_with_traceback_and_keeps_copy(env_python, tmp_path):
    """(b) exit 1, the traceback at <3> without ANSI codes, the copy holds the error, later cells don't run."""
    nb = write_nb(tmp_path / "err.ipynb", "print('before')", "1 / 0", "print('after')")
    out_path = tmp_path / "elsewhere.ipynb"
    proc = run(runner_cmd(env_python, nb, "--output", str(out_path)), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = lines_of(proc.stdout)
    assert "\x1b" not in proc.stdout
    assert_in_order(
        lines,
        [
            "<6>before",
            "<6>cell 2/3 started: 1 / 0",
            "<3>ZeroDivisionError: division by zero",
            "<3>cell 2 failed: ZeroDivisionError: division by zero",
        ],
    )
    assert any(line.startswith("<3>") and "Traceback" in line for line in lines)
    assert "<6>after" not in lines and "cell 3/3" not in proc.stdout
    out = nbformat.read(out_path, as_version=4)
    # papermill's layout: a banner on top, an anchor just before the failing cell, both tagged
    assert [c.cell_type for c in out.cells] == ["markdown", "code", "markdown", "code", "code"]
    assert (
        "papermill-error-cell-tag" in out.cells[0].metadata.tags
        and 'href="#papermill-error-cell"' in out.cells[0].source
    )
    assert 'id="papermill-error-cell"' in out.cells[2].source
    assert out.cells[3].outputs[0].output_type == "error"
    assert out.cells[3].outputs[0].ename == "ZeroDivisionError"
    assert out.cells[4].outputs == []
    assert out.metadata.papermill["exception"] is True
    assert [c.metadata.papermill["status"] for c in out.cells if c.cell_type == "code"] == [
        "completed",
        "failed",
        "pending",
    ]
    assert out.cells[3].metadata.papermill["exception"] is True and out.cells[3].metadata.papermill["duration"] >= 0
    assert not (tmp_path / "err.out.ipynb").exists()


def test_parameters_injected_after_parameters_cell(env_python, tmp_path):
    """(c) the injected cell follows the tagged one and overrides its defaults."""
    nb = write_nb(
        tmp_path / "params.ipynb",
        "print('first')",
        "alpha = 1\nname = 'default'",
        "print('alpha', repr(alpha), 'name', repr(name), 'opts', opts)",
        tags={1: ["parameters"]},
    )
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"alpha": 2.5, "name": 'it\'s "quoted"', "opts": {"k": [1, None, True]}}))
    proc = run(runner_cmd(env_python, nb, "--parameters-file", str(params)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<6>alpha 2.5 name 'it\\'s \"quoted\"' opts {'k': [1, None, True]}" in lines_of(proc.stdout)
    out = nbformat.read(tmp_path / "params.out.ipynb", as_version=4)
    assert [c.metadata.get("tags", []) for c in out.cells] == [[], ["parameters"], [INJECTED_TAG], []]
    assert out.cells[2].source.splitlines()[1:] == [
        "alpha = 2.5",
        "name = 'it\\'s \"quoted\"'",
        "opts = {'k': [1, None, True]}",
    ]
    nbformat.validate(out)


def test_bad_parameter_name_exits_2(env_python, tmp_path):
    """(c) a bad parameters file is a usage error: exit 2, an err-level line on stderr, no kernel."""
    nb = write_nb(tmp_path / "p.ipynb", "print(1)")
    pfile = tmp_path / "p.json"
    pfile.write_text(json.dumps({"ok": 1, "class": 2}))
    proc = run(runner_cmd(env_python, nb, "--parameters-file", str(pfile)), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("<3>") and "'class' is not a valid Python variable name" in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "p.out.ipynb").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--notebook", "missing.ipynb"], "does not exist"),
        (["--notebook", "broken.ipynb"], "is not a valid notebook"),
        (["--notebook", "ok.ipynb", "--cell-timeout", "0"], "positive number of seconds"),
        (["--notebook", "ok.ipynb", "--python", "/nonexistent/bin/python"], "not an absolute path to an executable"),
        (["--notebook", "ok.ipynb", "--output", "/nonexistent/out.ipynb"], "not writable"),
        (["--notebook", "ok.ipynb", "--output", "ok.ipynb"], "must not be the notebook itself"),
        (["--notebook", "ok.ipynb", "--parameters-file", "list.json"], "must be a JSON object"),
        (["--notebook", "ok.ipynb", "--parameters-file", "nan.json"], "finite number"),
        (["--notebook", "ok.ipynb", "--parameters-file", "missing.json"], "cannot read parameters file"),
        (["--python", "x"], "required: --notebook"),
    ],
)
def test_bad_arguments_exit_2(env_python, tmp_path, monkeypatch, capsys, args, needle):
    """Usage errors, checked in-process (the subprocess path is the test above): exit 2, ``<3>`` on stderr."""
    from jupyter_condasvc.runner import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    (tmp_path / "broken.ipynb").write_text("{")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "nan.json").write_text('{"x": NaN}')
    write_nb(tmp_path / "ok.ipynb", "print(1)")
    base = [] if "--python" in args else ["--python", str(env_python)]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("<3>") and needle in err, err
    assert not (tmp_path / "ok.out.ipynb").exists()


def test_notify_socket_gets_ready_and_cell_status(env_python, tmp_path):
    """(d) the sd_notify protocol on a real datagram socket, as systemd receives it."""
    nb = write_nb(
        tmp_path / "n.ipynb",
        "import os\nx = 1",
        "# md text",
        "print(x, os.environ.get('NOTIFY_SOCKET'))\n# a second line",
        "y = 'a' * 100  # " + "long " * 20,
    )
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        proc = run(runner_cmd(env_python, nb), cwd=tmp_path, NOTIFY_SOCKET=str(path))
        messages = drain(sock)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert messages[0].splitlines()[0] == "READY=1", messages
    statuses = [m for m in messages if m.startswith("STATUS=cell")]
    assert statuses[:2] == ["STATUS=cell 1/3: import os", "STATUS=cell 2/3: print(x, os.environ.get('NOTIFY_SOCKET'))"]
    assert "<6>1 None" in lines_of(proc.stdout)  # the kernel does not inherit NOTIFY_SOCKET
    assert statuses[2].startswith("STATUS=cell 3/3: y = 'a'") and len(statuses[2]) <= len("STATUS=cell 3/3: ") + 60
    assert statuses[2].endswith("…")
    assert messages[-1].startswith("STATUS=finished: 3 cells in ")
    assert "STOPPING=1" not in messages


def test_notify_abstract_socket_and_absent_socket():
    """``@name`` is the abstract namespace; without NOTIFY_SOCKET nothing is sent."""
    name = f"condasvc-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert notify("STATUS=hi", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"STATUS=hi"
    assert notify("READY=1", env={}) is False


def test_serve_forever_streams_live_and_stops_on_sigterm(env_python, tmp_path):
    """(e) output of a never-ending cell arrives while it runs; SIGTERM stops runner and kernel promptly."""
    nb = write_nb(
        tmp_path / "serve.ipynb",
        "import os, time\nprint('kernel pid', os.getpid())",
        "while True:\n    print('tick', flush=True)\n    time.sleep(0.2)",
    )
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        proc = subprocess.Popen(
            runner_cmd(env_python, nb),
            cwd=tmp_path,
            env=runner_env(NOTIFY_SOCKET=str(path)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            buf, lines, tick_times = b"", [], []
            deadline = time.monotonic() + 30
            while len(tick_times) < 4 and time.monotonic() < deadline:
                if not sel.select(timeout=1):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, "runner exited early: " + proc.stderr.read().decode()
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for line in complete:
                    lines.append(line.decode())
                    if line == b"<6>tick":
                        tick_times.append(time.monotonic())
            assert len(tick_times) == 4, lines
            # Live: ticks arrive spread over time, not in one burst at the end of the cell.
            assert tick_times[-1] - tick_times[0] > 0.3
            kernel_pid = int(next(line for line in lines if line.startswith("<6>kernel pid ")).split()[-1])
            assert pid_alive(kernel_pid)

            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=10)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        messages = drain(sock)
    rest = proc.stdout.read().decode().splitlines()
    assert rc == 0, rest
    assert took < 5, f"stop took {took:.1f}s"
    deadline = time.monotonic() + 2
    while pid_alive(kernel_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(kernel_pid), "the kernel outlived the runner"
    assert "<5>stop requested (SIGTERM)" in rest and rest[-1] == "<5>stopped"
    assert not any(line.startswith("<3>") for line in rest), rest  # a requested stop is not an error
    assert "STOPPING=1" in messages and messages[0].startswith("READY=1")
    out = nbformat.read(tmp_path / "serve.out.ipynb", as_version=4)
    assert outputs_text(out.cells[0]) == f"kernel pid {kernel_pid}\n"
    assert "tick\n" in outputs_text(out.cells[1])


def test_cell_timeout_is_a_failure(env_python, tmp_path):
    nb = write_nb(tmp_path / "slow.ipynb", "import time\nprint('start', flush=True)\ntime.sleep(60)", "print('next')")
    t0 = time.monotonic()
    proc = run(runner_cmd(env_python, nb, "--cell-timeout", "1"), cwd=tmp_path)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "<3>cell 1 failed: timed out after 1 s (--cell-timeout); the kernel was interrupted" in lines_of(proc.stdout)
    out = nbformat.read(tmp_path / "slow.out.ipynb", as_version=4)
    code = [c for c in out.cells if c.cell_type == "code"]
    assert outputs_text(code[0]).startswith("start\n")
    assert code[1].outputs == [] and code[0].metadata.papermill["status"] == "failed"


def test_kernel_runs_on_the_given_interpreter(env_python, tmp_path):
    """(f) the env's python runs the kernel, whatever the notebook's kernelspec says."""
    nb = new_notebook(cells=[new_code_cell("import sys\nprint(sys.executable)\nprint(sys.prefix)")])
    nb.metadata["kernelspec"] = {"name": "some-other-kernel", "display_name": "Other", "language": "python"}
    nbformat.write(nb, tmp_path / "which.ipynb")
    proc = run(runner_cmd(env_python, tmp_path / "which.ipynb"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = lines_of(proc.stdout)
    assert f"<6>{env_python}" in lines
    assert f"<6>{env_python.parent.parent}" in lines
    assert f"<6>{sys.executable}" not in lines


@pytest.mark.slow
def test_interpreter_without_ipykernel_exits_3(tmp_path):
    prefix = make_conda_env(tmp_path / "bare")
    nb = write_nb(tmp_path / "k.ipynb", "print(1)")
    proc = run(runner_cmd(prefix / "bin" / "python", nb, "--kernel-timeout", "20"), cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "<3>kernel failed to start from " in proc.stdout and "ipykernel" in proc.stdout


# --------------------------------------------------------------------------
# Under the real user manager: the unit settings the runner is written for


def _user_manager_env() -> Optional[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")}
    env.setdefault("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
    try:
        state = subprocess.run(
            ["systemctl", "--user", "is-system-running"], env=env, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return env if state in ("running", "degraded") else None


def _journal_records(unit: str, env: dict[str, str]) -> list[dict[str, str]]:
    out = subprocess.run(
        ["journalctl", "--user", "-u", unit, "-o", "json", "--no-pager"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.systemd
def test_as_a_notify_unit_under_systemd(env_python, tmp_path):
    """Type=notify start returns at READY=1, StatusText names the cell, journald reads the
    levels, and `systemctl stop` (KillMode=mixed) ends runner and kernel cleanly."""
    env = _user_manager_env()
    if env is None:
        pytest.skip("no reachable systemd user manager (scripts/test provides one)")
    nb = write_nb(
        tmp_path / "svc.ipynb",
        "import os, sys, time\nprint('kernel pid', os.getpid())\nprint('a warning', file=sys.stderr)",
        "while True:\n    print('tick', flush=True)\n    time.sleep(0.2)",
    )
    unit = f"ctrunner-{os.getpid()}-{time.monotonic_ns() % 10**6}.service"
    start = subprocess.run(
        [
            "systemd-run",
            "--user",
            "--quiet",
            f"--unit={unit}",
            "--service-type=notify",
            "-p",
            "NotifyAccess=main",
            "-p",
            "KillMode=mixed",
            "-p",
            "TimeoutStopSec=15",
            "-p",
            f"WorkingDirectory={tmp_path}",
            "-E",
            f"PYTHONPATH={REPO}",
            *runner_cmd(env_python, nb),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert start.returncode == 0, start.stderr

        def show() -> dict[str, str]:
            out = subprocess.run(
                [
                    "systemctl",
                    "--user",
                    "show",
                    unit,
                    "-p",
                    "ActiveState",
                    "-p",
                    "SubState",
                    "-p",
                    "StatusText",
                    "-p",
                    "Result",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

        deadline = time.monotonic() + 15
        records: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            records = _journal_records(unit, env)
            if sum(r.get("MESSAGE") == "tick" for r in records) >= 3 and show()["StatusText"].startswith("cell 2/2"):
                break
            time.sleep(0.2)
        props = show()
        assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
        assert props["StatusText"] == "cell 2/2: while True:"
        levels = {r["MESSAGE"]: r.get("PRIORITY") for r in records if isinstance(r.get("MESSAGE"), str)}
        assert levels.get("tick") == "6" and levels.get("a warning") == "3", levels
        assert any(m.startswith("kernel started: ") and p == "5" for m, p in levels.items()), levels
        kernel_pid = int(next(m for m in levels if m.startswith("kernel pid ")).split()[-1])

        t0 = time.monotonic()
        stop = subprocess.run(
            ["systemctl", "--user", "stop", unit], env=env, capture_output=True, text=True, timeout=30
        )
        assert stop.returncode == 0, stop.stderr
        assert time.monotonic() - t0 < 5
        assert not pid_alive(kernel_pid)
        time.sleep(0.3)
        messages = [r.get("MESSAGE") for r in _journal_records(unit, env)]
        assert "stopped" in messages and not any("Failed with result" in str(m) for m in messages), messages
    finally:
        subprocess.run(["systemctl", "--user", "stop", unit], env=env, capture_output=True, timeout=30)
        subprocess.run(["systemctl", "--user", "reset-failed", unit], env=env, capture_output=True, timeout=30)


# --------------------------------------------------------------------------
# inject_parameters: pure, so checked in-process


def test_inject_parameters_is_pure_and_replaces_old_injection():
    nb = new_notebook(cells=[new_code_cell("a = 1", metadata={"tags": ["parameters"]}), new_code_cell("print(a)")])
    before = nbformat.writes(nb)
    once = inject_parameters(nb, {"a": 2})
    assert nbformat.writes(nb) == before
    twice = inject_parameters(once, {"a": 3})
    assert [c.source for c in twice.cells] == ["a = 1", "# Parameters\na = 3\n", "print(a)"]
    assert inject_parameters(once, {}).cells == nb.cells
    top = inject_parameters(new_notebook(cells=[new_code_cell("print(b)")]), {"b": None})
    assert top.cells[0].metadata.tags == [INJECTED_TAG] and top.cells[0].source.endswith("b = None\n")
    old = new_notebook(cells=[new_code_cell("x")])
    old.nbformat_minor = 4
    for c in old.cells:
        c.pop("id", None)
    nbformat.validate(inject_parameters(old, {"y": 1}))


@pytest.mark.parametrize("params", [{"x": float("nan")}, {"x": {1, 2}}, {"x": b"bytes"}, {"for": 1}, {"": 1}])
def test_inject_parameters_rejects(params):
    with pytest.raises(InvalidSpec):
        inject_parameters(new_notebook(), params)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
names = st.text("abcxyzAZ_09", min_size=1, max_size=8).filter(lambda n: n.isidentifier() and not keyword.iskeyword(n))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(names, json_values, max_size=5))
def test_injected_source_round_trips(params):
    """Executing the injected cell gives back exactly the JSON values."""
    nb = inject_parameters(new_notebook(cells=[new_code_cell("pass")]), params)
    ns: dict = {}
    if params:
        exec(nb.cells[0].source, {}, ns)
    assert ns == params
    assert json.dumps(ns, sort_keys=True) == json.dumps(params, sort_keys=True)


# --------------------------------------------------------------------------
# papermill's semantics (papermill/tests/test_execute.py and engines.py read as the reference)


@pytest.mark.parametrize(
    "exit_source", ["import sys\nsys.exit()", "import sys\nsys.exit(0)", "raise SystemExit", "raise SystemExit(0)"]
)
def test_clean_exit_succeeds_and_skips_the_rest(env_python, tmp_path, exit_source):
    nb = write_nb(tmp_path / "exits.ipynb", "print('one')", exit_source, "print('never')")
    proc = run(runner_cmd(env_python, nb), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<6>never" not in lines_of(proc.stdout)
    out = nbformat.read(tmp_path / "exits.out.ipynb", as_version=4)
    assert [c.cell_type for c in out.cells] == ["code"] * 3, "no error markers for a clean exit"
    assert [c.metadata.papermill["status"] for c in out.cells] == ["completed", "completed", "pending"]
    assert out.cells[2].outputs == [] and out.cells[2].execution_count is None
    assert not out.metadata.papermill["exception"]


@pytest.mark.parametrize(
    "exit_source", ["import sys\nsys.exit(1)", "raise SystemExit('bad')", "import sys\nsys.exit(2)"]
)
def test_unclean_exit_fails(env_python, tmp_path, exit_source):
    nb = write_nb(tmp_path / "exits.ipynb", exit_source, "print('never')")
    proc = run(runner_cmd(env_python, nb), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = nbformat.read(tmp_path / "exits.out.ipynb", as_version=4)
    assert out.metadata.papermill["exception"] is True and out.cells[0].metadata.tags == ["papermill-error-cell-tag"]


def test_outputs_markers_and_metadata_of_the_input_never_survive(env_python, tmp_path):
    """An executed copy run again (outputs, counts, error banners, metadata.papermill in the input) starts clean."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("old banner", metadata={"tags": ["papermill-error-cell-tag"]}),
            new_code_cell(
                "x = 1", execution_count=7, outputs=[nbformat.v4.new_output("stream", name="stdout", text="stale\n")]
            ),
            new_code_cell("1 / 0", execution_count=8),
            new_code_cell(
                "print('later')",
                execution_count=9,
                outputs=[nbformat.v4.new_output("stream", name="stdout", text="stale later\n")],
            ),
        ]
    )
    nb.metadata["papermill"] = {"exception": True, "parameters": {"old": 1}}
    nbformat.write(nb, tmp_path / "again.ipynb")
    proc = run(runner_cmd(env_python, tmp_path / "again.ipynb"), cwd=tmp_path)
    assert proc.returncode == 1
    out = nbformat.read(tmp_path / "again.out.ipynb", as_version=4)
    assert "stale" not in nbformat.writes(out) and "old banner" not in nbformat.writes(out)
    code = [c for c in out.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, None]
    assert code[2].outputs == [] and code[2].metadata.papermill["status"] == "pending"
    assert out.metadata.papermill["parameters"] == {} and out.metadata.papermill["exception"] is True
    assert sum("papermill-error-cell-tag" in c.metadata.get("tags", []) for c in out.cells) == 2
    assert out.metadata.papermill["start_time"] and out.metadata.papermill["duration"] is not None


def test_parameters_metadata_and_injected_cell_replaced_in_place(env_python, tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell("print('top')"),
            new_code_cell("# Parameters\nalpha = 0\n", metadata={"tags": ["injected-parameters"]}),
            new_code_cell("alpha = -1", metadata={"tags": ["parameters"]}),
            new_code_cell("print(alpha)"),
        ]
    )
    nbformat.write(nb, tmp_path / "p.ipynb")
    (tmp_path / "params.json").write_text(json.dumps({"alpha": 5}))
    proc = run(
        runner_cmd(env_python, tmp_path / "p.ipynb", "--parameters-file", str(tmp_path / "params.json")), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = nbformat.read(tmp_path / "p.out.ipynb", as_version=4)
    # papermill replaces an earlier injected cell where it stands, so the tagged defaults after it win here, as there
    assert [c.metadata.get("tags", []) for c in out.cells] == [[], ["injected-parameters"], ["parameters"], []]
    assert out.cells[1].source == "# Parameters\nalpha = 5\n"
    assert outputs_text(out.cells[3]) == "-1\n"
    assert out.metadata.papermill["parameters"] == {"alpha": 5}


def test_each_run_keeps_its_own_copy_and_retention_prunes(env_python, tmp_path):
    nb = write_nb(tmp_path / "r.ipynb", "print('run')")
    runs = tmp_path / "runs"
    for i in range(4):
        proc = run(
            runner_cmd(env_python, nb, "--runs-dir", str(runs), "--keep-runs", "3"),
            cwd=tmp_path,
            INVOCATION_ID=f"{i:032x}",
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        time.sleep(0.01)  # distinct mtimes
    kept = sorted(p.name for p in runs.glob("*.ipynb"))
    assert kept == [f"{i:032x}.ipynb" for i in (1, 2, 3)]
    assert outputs_text(nbformat.read(runs / kept[-1], as_version=4).cells[0]) == "run\n"


def test_prune_runs_by_age(tmp_path):
    from jupyter_condasvc.runner import prune_runs

    for i in range(3):
        (tmp_path / f"{i}.ipynb").write_text("{}")
        os.utime(tmp_path / f"{i}.ipynb", (1000 + i * 86400, 1000 + i * 86400))
    removed = prune_runs(tmp_path, 0, 1.5, now=1000 + 2 * 86400 + 10)
    assert sorted(p.name for p in removed) == ["0.ipynb"]


# --------------------------------------------------------------------------
# The kernel started before the imports (prelaunch.py)


def _pid_cell_nb(tmp_path: Path) -> Path:
    return write_nb(tmp_path / "pid.ipynb", "import os\nprint('KERNEL-PID', os.getpid())")


def _prelaunched(env_python: Path, notebook: Path, tmp_path: Path, monkeypatch):
    """The runner's argv for NOTEBOOK, and the kernel prelaunch() started early for it (run from tmp_path)."""
    from jupyter_condasvc.prelaunch import prelaunch

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    argv = ["--python", str(env_python), "--notebook", str(notebook)]
    pre = prelaunch(argv)
    assert pre is not None
    return argv, pre


def _kernel_pid_printed(out: Path) -> int:
    text = outputs_text(nbformat.read(out, as_version=4).cells[0])
    return int(text.split("KERNEL-PID", 1)[1].split()[0])


def test_prelaunched_kernel_is_adopted(env_python, tmp_path, monkeypatch):
    """The kernel started before the imports is the one that runs the cells; nothing is left behind."""
    from jupyter_condasvc.runner import main

    argv, pre = _prelaunched(env_python, _pid_cell_nb(tmp_path), tmp_path, monkeypatch)
    assert main(argv, prelaunched=pre) == 0
    assert pre.adopted
    assert _kernel_pid_printed(tmp_path / "pid.out.ipynb") == pre.process.pid
    assert not pid_alive(pre.process.pid)
    assert not Path(pre.private_dir).exists()


def test_prelaunched_kernel_that_differs_is_replaced(env_python, tmp_path, monkeypatch):
    """An environment changed after the early start: that kernel is killed and jupyter_client starts its own."""
    from jupyter_condasvc.runner import main

    argv, pre = _prelaunched(env_python, _pid_cell_nb(tmp_path), tmp_path, monkeypatch)
    monkeypatch.setenv("CONDASVC_PRELAUNCH_TEST", "changed")
    assert main(argv, prelaunched=pre) == 0
    assert pre.process.poll() is not None  # killed, and reaped
    assert _kernel_pid_printed(tmp_path / "pid.out.ipynb") != pre.process.pid


def test_prelaunched_kernel_is_killed_on_a_usage_error(env_python, tmp_path, monkeypatch, capsys):
    from jupyter_condasvc.runner import main

    argv, pre = _prelaunched(env_python, tmp_path / "missing.ipynb", tmp_path, monkeypatch)
    assert main(argv, prelaunched=pre) == 2
    assert "does not exist" in capsys.readouterr().err
    assert pre.process.poll() is not None
    assert not Path(pre.private_dir).exists()
