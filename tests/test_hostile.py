"""Hostile input, round two (issue 16): each finding as a class, on the real stack.

* anchored patterns: every pattern-checked spec field refuses a control
  character at any position (``$`` matched before a final newline); text
  fields refuse line breaks and NUL and keep everything else exactly; the
  environment the process sees is exactly the one submitted.
* regex cost: log filters run on RE2 (linear time); a catastrophic pattern
  answers at once, an RE2-unsupported one is a 400 naming ``text``.
* robustness: deeply nested JSON, NaN, ``since=inf``: 400 not 500; size
  limits answer 413 naming the field; DELETE works on a unit systemd could
  not load.
* resource caps: many follow sockets share one inotify instance; the cap
  answers a clear error.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import PREFIX, SYSTEMD_SET_ENV, UNIT_DIR, create, systemctl, wait_for
from jupyter_condasvc.errors import InvalidSpec
from jupyter_condasvc.spec import parse_spec

EXAMPLES = int(os.environ.get("CONDASVC_HOSTILE_EXAMPLES") or 40)
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\u2028", "\u2029"]
LINE_BREAKS = {"\x00", "\n", "\r"}

BASE = {"name": "svc", "kind": "command", "env": "ml", "argv": ["python", "-c", "pass"]}
NOTEBOOK = {"name": "nb", "kind": "notebook", "env": "nb", "path": "a.ipynb"}

# field -> (base spec, a valid value, how to set it, how to read it back)
# Pattern fields: any control character anywhere must be refused.
PATTERN_FIELDS = {
    "name": (BASE, "svc-1.a_b", lambda s, v: {**s, "name": v}, lambda p: p.name),
    "memory_max": (BASE, "512M", lambda s, v: {**s, "memory_max": v}, lambda p: p.memory_max),
    "cpu_quota": (BASE, "50%", lambda s, v: {**s, "cpu_quota": v}, lambda p: p.cpu_quota),
    "environment (name)": (
        BASE,
        "MY_VAR",
        lambda s, v: {**s, "environment": {v: "x"}},
        lambda p: next(iter(p.environment)),
    ),
    "parameters (name)": (
        NOTEBOOK,
        "alpha",
        lambda s, v: {**s, "parameters": {v: 1}},
        lambda p: next(iter(p.parameters)),
    ),
    "secrets": (
        BASE,
        "TOKEN",
        lambda s, v: {**s, "environment": {"TOKEN": "x"}, "secrets": [v]},
        lambda p: p.secrets[0],
    ),
    "health_check.url": (
        BASE,
        "http://127.0.0.1:8000/health",
        lambda s, v: {**s, "health_check": {"type": "http", "url": v}},
        lambda p: p.health_check.url,
    ),
    "health_check.host": (
        BASE,
        "localhost",
        lambda s, v: {**s, "health_check": {"type": "tcp", "host": v, "port": 1}},
        lambda p: p.health_check.host,
    ),
}
# Text fields: NUL and line breaks refused, any other character kept exactly.
TEXT_FIELDS = {
    "env": (BASE, "ml", lambda s, v: {**s, "env": v}, lambda p: p.env),
    "path": (NOTEBOOK, "dir/a.ipynb", lambda s, v: {**s, "path": v + ".ipynb"}, lambda p: p.path[:-6]),
    "cwd": (BASE, "some/dir", lambda s, v: {**s, "cwd": v}, lambda p: p.cwd),
    "output": (NOTEBOOK, "out.ipynb", lambda s, v: {**s, "output": v}, lambda p: p.output),
    "argv": (BASE, "arg", lambda s, v: {**s, "argv": ["python", v]}, lambda p: p.argv[1]),
    "args": (BASE, "arg", lambda s, v: {**s, "args": [v]}, lambda p: p.args[0]),
    "description": (BASE, "a service", lambda s, v: {**s, "description": v}, lambda p: p.description),
    "schedule": (BASE, "daily", lambda s, v: {**s, "schedule": v}, lambda p: p.schedule),
    "environment (value)": (BASE, "value", lambda s, v: {**s, "environment": {"V": v}}, lambda p: p.environment["V"]),
}


def _parse(spec):
    try:
        return parse_spec(spec)
    except InvalidSpec as exc:
        assert exc.field, exc.message  # noqa: PT017  (a 400 names its field; hypothesis calls this per example)
        return None


@pytest.mark.parametrize("field", sorted(PATTERN_FIELDS))
def test_pattern_fields_refuse_control_characters_at_every_position(field):
    """Exhaustive: every control character at every position (a few hundred pure parses per field)."""
    base, valid, put, _get = PATTERN_FIELDS[field]
    assert _parse(put(base, valid)) is not None, "the valid value must pass"
    accepted = [
        valid[:pos] + ch + valid[pos:]
        for ch in CONTROLS
        for pos in range(len(valid) + 1)
        if _parse(put(base, valid[:pos] + ch + valid[pos:])) is not None
    ]
    assert not accepted, f"{field}: accepted {accepted[:5]!r}"


@pytest.mark.parametrize("field", sorted(PATTERN_FIELDS))
def test_pattern_fields_refuse_a_trailing_newline(field):
    """The exact repro of finding 4: ``$`` matches before a final newline."""
    base, valid, put, _get = PATTERN_FIELDS[field]
    for value in (valid + "\n", "\n" + valid, valid + "\r\n"):
        assert _parse(put(base, value)) is None, f"{field}={value!r} was accepted"


@pytest.mark.parametrize("field", sorted(TEXT_FIELDS))
def test_text_fields_refuse_line_breaks_and_keep_the_rest_exactly(field):
    """Exhaustive: every control character at every position is refused (line breaks, NUL) or kept exactly."""
    base, valid, put, get = TEXT_FIELDS[field]
    refused = {"\x00"} if field == "environment (value)" else LINE_BREAKS
    for ch in CONTROLS:
        for pos in range(len(valid) + 1):
            value = valid[:pos] + ch + valid[pos:]
            parsed = _parse(put(base, value))
            if ch in refused:
                assert parsed is None, f"{field}={value!r} was accepted"
            elif parsed is not None:
                assert get(parsed) == value, "accepted values round-trip exactly"
            else:
                # only white space at the edges of description/schedule may be refused besides
                assert field in ("description", "schedule") and pos in (0, len(valid)) and ch.isspace(), (field, value)


async def test_trailing_newline_variable_name_cannot_inject_variables(api, root):
    """Finding 4's repro, through the API: 400, nothing written, nothing run."""
    evil = {"X\n": 'a"\nPATH=/tmp/evil\nLD_PRELOAD=/tmp/evil.so\nEVIL=1\n'}
    spec = {"name": "inj", "kind": "command", "env": "ml", "argv": ["python", "-c", "pass"], "environment": evil}
    code, body = await api("POST", "services", body=spec)
    assert code == 400 and body["field"] == "environment", body
    assert not (UNIT_DIR / f"{PREFIX}inj.service").exists()
    ok = {**spec, "environment": {"X": "1"}}
    code, body = await api("POST", "services", body=ok)
    assert code == 201, body
    try:
        code, body = await api("PATCH", "services", "inj", body={"environment": evil})
        assert code == 400 and body["field"] == "environment", body
        for field, value in (("memory_max", "512M\n"), ("cpu_quota", "50%\n")):
            code, body = await api("PATCH", "services", "inj", body={field: value})
            assert code == 400 and body["field"] == field, body
    finally:
        await api("DELETE", "services", "inj")


DUMP = "import json, os; json.dump(dict(os.environ), open(os.environ['OUT_FILE'], 'w'))"
# systemd (and our unit) set these whatever the spec says
EXPECTED_EXTRA = SYSTEMD_SET_ENV | {
    "PATH",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "PYTHONUNBUFFERED",
    "OUT_FILE",
    "PWD",
    "LC_CTYPE",
    "TERM",
    "MAINPID",
    "MEMORY_PRESSURE_WATCH",
    "MEMORY_PRESSURE_WRITE",
    "SHLVL",
    "_",
}
hostile_value = st.lists(
    st.sampled_from([*CONTROLS, "a", "=", '"', "'", "\\", "$", "`", "PATH=/x", " "]), max_size=8
).map("".join)
counter = iter(range(10**6))


@settings(max_examples=max(3, EXAMPLES // 8), deadline=None, suppress_health_check=list(HealthCheck))
@given(value=hostile_value)
def test_process_sees_exactly_the_submitted_environment(api, root, jp_asyncio_loop, value):
    jp_asyncio_loop.run_until_complete(_env_example(api, root, value))


async def _env_example(api, root, value):
    name = f"envx{next(counter)}"
    out = Path(root) / f"{name}.json"
    submitted = {"A": value, "B_2": value[::-1], "OUT_FILE": str(out)}
    spec = {
        "name": name,
        "kind": "command",
        "env": "ml",
        "argv": ["python", "-c", DUMP],
        "restart": "no",
        "environment": submitted,
    }
    code, body = await api("POST", "services", body=spec)
    if "\x00" in value:
        assert code == 400 and body["field"] == "environment", body
        return
    assert code == 201, body
    try:
        await api("POST", "services", name, "start")
        seen = await wait_for(lambda: _read(out), timeout=60)  # a loaded machine can be slow to start a service
        # the manager's own environment (environment.d, set-environment) reaches every service
        manager = {line.split("=", 1)[0] for line in systemctl("show-environment").stdout.splitlines() if "=" in line}
        extra = set(seen) - set(submitted) - EXPECTED_EXTRA - manager
        assert not extra, f"variables nobody submitted reached the process: {sorted(extra)}"
        for key, val in submitted.items():
            assert seen[key] == val, key
    finally:
        await api("DELETE", "services", name)


async def _read(path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


# -- regex cost (finding 2) ----------------------------------------------------


async def test_catastrophic_regex_answers_at_once_and_unsupported_is_400(api, root, jp_ws_fetch):
    # 40 A's: a backtracking engine would need ~2**40 steps for (A+)+B; the test would time out
    line = "A" * 40
    await create(api, root, "redos", f"print({line!r} * 1, flush=True)\nprint('AAB', flush=True)\n", restart="no")
    await api("POST", "services", "redos", "start")

    async def logged():
        code, page = await api("GET", "services", "redos", "logs", n="50")
        return code == 200 and any(e["message"] == "AAB" for e in page["entries"]) and page

    await wait_for(logged, timeout=20)
    code, page = await api("GET", "services", "redos", "logs", text="(A+)+B", regex="1", n="50")
    assert code == 200, page
    assert [e["message"] for e in page["entries"] if e["source"] == "service"] == ["AAB"]
    # the follow socket takes the same filter through the same matcher
    ws = await jp_ws_fetch(
        "condasvc", "api", "services", "redos", "logs", "follow", params={"text": "(A+)+B", "regex": "1", "n": "50"}
    )
    hello = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert hello["type"] == "hello"
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert [e["message"] for e in msg["entries"] if e["source"] == "service"] == ["AAB"], msg
    ws.close()
    for pattern in (r"(a)\1", "(?=a)b", "(unclosed"):
        code, body = await api("GET", "services", "redos", "logs", text=pattern, regex="1")
        assert code == 400 and body["field"] == "text", body
    code, body = await api("GET", "services", "redos", "logs", text="x" * 1001)
    assert code == 400 and body["field"] == "text", body
    # a literal search with regex characters is a substring search
    code, page = await api("GET", "services", "redos", "logs", text="(A+)+B", n="50")
    assert code == 200 and page["entries"] == []
    await api("DELETE", "services", "redos")


# -- robustness (finding 7) ----------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "0001-01-01T00:00:00", "-99999999999999d"])
async def test_out_of_range_times_are_400(api, root, value):
    await create(api, root, "times", "pass\n")
    for field in ("since", "until"):
        code, body = await api("GET", "services", "times", "logs", **{field: value})
        assert code == 400 and body["field"] == field, body
    code, body = await api("GET", "services", "times", "logs", priority="\u00b2")  # a Unicode digit
    assert code == 400 and body["field"] == "priority", body
    await api("DELETE", "services", "times")


async def test_deep_json_and_non_json_numbers_are_400(jp_fetch, api, root):
    from tornado.httpclient import HTTPClientError

    (root / "deep.py").write_text("pass\n")
    bodies = {
        "nested": "[" * 100000 + "]" * 100000,
        "nested object": '{"a":' * 50000 + "1" + "}" * 50000,
        "NaN": json.dumps({"name": "deep", "kind": "notebook", "env": "nb", "path": "x.ipynb"})[:-1]
        + ', "parameters": {"a": NaN}}',
        "Infinity": '{"name": "deep", "kind": "script", "env": "ml", "path": "deep.py", "restart_sec": Infinity}',
    }
    for what, body in bodies.items():
        for path in (("services",), ("preview",)):
            with pytest.raises(HTTPClientError) as e:
                await jp_fetch("condasvc", "api", *path, method="POST", body=body)
            assert e.value.code == 400, what
            data = json.loads(e.value.response.body)
            assert data["field"] == "body", (what, data)


async def test_size_limits_are_413_naming_the_field(jp_fetch, api, root):
    from tornado.httpclient import HTTPClientError

    base = {"name": "big", "kind": "command", "env": "ml", "argv": ["python", "-c", "pass"]}
    cases = {
        "argv": {**base, "argv": ["python", "x" * (33 << 10)]},
        "args": {**base, "args": ["y" * 40000]},
        "cwd": {**base, "cwd": "d" * 40000},
        "environment": {**base, "environment": {f"V{i}": "v" for i in range(1001)}},
    }
    cases["argv total"] = {**base, "argv": ["python"] + ["z" * 30000] * 5}
    cases["environment bytes"] = {**base, "environment": {f"V{i}": "v" * 30000 for i in range(5)}}
    for what, spec in cases.items():
        code, body = await api("POST", "services", body=spec)
        assert code == 413, (what, body)
        assert body["field"] == what.split()[0], (what, body)
        assert "CondaSvcApp.max_" in body["message"], body
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch(
            "condasvc", "api", "services", method="POST", body=json.dumps({**base, "description": "d" * (2 << 20)})
        )
    assert e.value.code == 413 and json.loads(e.value.response.body)["field"] == "body"
    assert not (UNIT_DIR / f"{PREFIX}big.service").exists()
    # the same limits hold for an edit
    code, _ = await api("POST", "services", body=base)
    assert code == 201
    code, body = await api("PATCH", "services", "big", body={"args": ["a" * (40 << 10)]})
    assert code == 413 and body["field"] == "args", body
    await api("DELETE", "services", "big")


@pytest.fixture
def no_limits_config(jp_server_config):
    """The state the limits now prevent, as an older version (or a hand edit) leaves it."""
    jp_server_config["CondaSvcApp"].update(
        max_body_bytes=10 << 20, max_argument_bytes=10 << 20, max_argv_bytes=10 << 20
    )
    return jp_server_config


async def test_delete_works_on_a_unit_systemd_could_not_load(no_limits_config, api, root, unit_name):
    # a 2 MiB argument: systemd refuses the ExecStart= line (over its 1 MiB limit, "No buffer space available")
    spec = {"name": "unloadable", "kind": "command", "env": "ml", "argv": ["python", "-c", "pass", "x" * (2 << 20)]}
    code, body = await api("POST", "services", body=spec)
    assert code == 201, str(body)[:300]
    path = UNIT_DIR / unit_name("unloadable")
    shown = systemctl("show", "-P", "LoadState", "-P", "UnitFileState", unit_name("unloadable")).stdout.split()
    assert shown == ["error", "bad"], shown
    code, body = await api("DELETE", "services", "unloadable")
    assert code == 204, body
    assert not path.exists()
    code, _ = await api("GET", "services", "unloadable")
    assert code == 404


# -- resource caps (finding 3) -------------------------------------------------


def _inotify_fds():
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify":
                n += 1
        except OSError:
            pass
    return n


def _can_inotify():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(0)
    if fd < 0:
        return False
    os.close(fd)
    return True


@pytest.fixture
def many_followers_config(jp_server_config):
    jp_server_config["CondaSvcApp"]["follow_max_followers"] = 140
    return jp_server_config


async def test_many_followers_share_one_inotify_instance(many_followers_config, api, root, jp_ws_fetch):
    await create(api, root, "crowd", "print('hi', flush=True)\n", restart="no")
    before = _inotify_fds()
    sockets = []
    try:
        # more sockets than a user has inotify instances (fs.inotify.max_user_instances is 128 by default)
        for _ in range(135):
            ws = await jp_ws_fetch("condasvc", "api", "services", "crowd", "logs", "follow")
            hello = json.loads(await asyncio.wait_for(ws.read_message(), 10))
            assert hello["type"] == "hello", hello
            sockets.append(ws)
        assert _inotify_fds() - before <= 1, "one journal watch for all followers"
        assert _can_inotify(), "the user's other programs still get inotify"
        proc = await asyncio.create_subprocess_exec(
            "python3", "-c", "import ctypes,sys; sys.exit(ctypes.CDLL(None).inotify_init1(0) < 0)"
        )
        assert await proc.wait() == 0, "another process of this user cannot get an inotify instance"

        # every follower still gets lines
        async def started():  # a start may meet a user manager that is re-executing (503): try again
            return (await api("POST", "services", "crowd", "start"))[0] == 200

        await wait_for(started, timeout=30, interval=1)
        for ws in (sockets[0], sockets[-1]):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.read_message(), 15))
                if msg["type"] == "entries" and any(e["message"] == "hi" for e in msg["entries"]):
                    break
        # the cap (140): the 141st is told why and closed
        while len(sockets) < 140:
            sockets.append(await jp_ws_fetch("condasvc", "api", "services", "crowd", "logs", "follow"))
        ws = await jp_ws_fetch("condasvc", "api", "services", "crowd", "logs", "follow")
        sockets.append(ws)
        msgs = []
        while True:
            text = await asyncio.wait_for(ws.read_message(), 10)
            if text is None:
                break
            msgs.append(json.loads(text))
        assert msgs[-1]["type"] == "error" and "follow_max_followers" in msgs[-1]["message"], msgs
    finally:
        for ws in sockets:
            ws.close()
        await api("DELETE", "services", "crowd")
    await wait_for(lambda: _async(_inotify_fds() <= before), timeout=10)  # released with the last follower


async def _async(value):
    return value


# -- health-check credentials (finding 1) --------------------------------------

AUTH_SERVER = """\
import base64, http.server, sys
EXPECTED = 'Basic ' + base64.b64encode(b'admin:S3cretPW').decode()
seen = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen[0] += 1
        ok = self.headers.get('Authorization') == EXPECTED and self.path == '/health?token=T0kenVal'
        # the first two probes fail, so there is a last_error to show
        self.send_response(200 if ok and seen[0] > 2 else 500)
        self.end_headers()
    def log_message(self, *a):
        pass
print('serving', flush=True)
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"""
SECRETS = ("S3cretPW", "T0kenVal", "admin:")


def _procs_mentioning(words):
    hits = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if any(w in cmdline for w in words):
            hits.append((pid, cmdline))
    return hits


async def test_health_check_credentials_stay_in_the_private_environment_file(
    api, root, unit_name, jp_serverapp, state_dir
):
    from helpers import free_port, journal

    port = free_port()
    url = f"http://admin:S3cretPW@127.0.0.1:{port}/health?token=T0kenVal"
    shown_url = f"http://***@127.0.0.1:{port}/health?token=***"
    check = {
        "type": "http",
        "url": url,
        "interval_sec": 0.5,
        "timeout_sec": 0.4,
        "start_period_sec": 0,
        "failure_threshold": 100,
    }
    svc = await create(api, root, "authweb", AUTH_SERVER, args=[str(port)], health_check=check)
    assert svc["spec"]["health_check"]["url"] == shown_url
    try:
        unit_text = (UNIT_DIR / unit_name("authweb")).read_text()
        assert not [w for w in SECRETS if w in unit_text], unit_text
        env_file = state_dir / "authweb.env"
        assert url in env_file.read_text() and (env_file.stat().st_mode & 0o777) == 0o600
        await api("POST", "services", "authweb", "start")

        async def healthy():
            code, svc = await api("GET", "services", "authweb")
            health = svc["status"].get("health") or {}
            return health.get("state") == "healthy" and health.get("last_error") and svc

        svc = await wait_for(healthy, timeout=30)  # the prober authenticated: the credentials reached it
        assert svc["status"]["health"]["last_error"] == f"HTTP 500 from {shown_url}"
        assert not [w for w in SECRETS if w in json.dumps(svc)], svc
        systemd = jp_serverapp.web_app.settings["condasvc_systemd"]
        props = await systemd.get_unit_properties(unit_name("authweb"), fresh=True)
        assert not [w for w in SECRETS if w in json.dumps(props, default=str)]
        assert not _procs_mentioning(SECRETS), "credentials on a command line every local user can read"
        code, logs = await api("GET", "services", "authweb", "logs", n="200")
        logged = json.dumps(logs) + journal(unit_name("authweb"))
        assert shown_url in logged and not [w for w in SECRETS if w in logged]
        code, text = await api("GET", "services", "authweb", "unit")
        assert not [w for w in SECRETS if w in json.dumps(text)]
        # sending the shown spec back keeps the credentials; a new URL replaces them
        code, svc = await api(
            "PATCH", "services", "authweb", body={"health_check": svc["spec"]["health_check"], "description": "edited"}
        )
        assert code == 200, svc
        assert url in env_file.read_text()
        new = f"http://127.0.0.1:{port}/other"
        code, svc = await api("PATCH", "services", "authweb", body={"health_check": {**check, "url": new}})
        assert code == 200 and svc["spec"]["health_check"]["url"] == new
        assert "S3cretPW" not in env_file.read_text()
    finally:
        await api("DELETE", "services", "authweb")


# -- notebook output (finding 6) -----------------------------------------------


@pytest.fixture
def outside_root_config(jp_server_config):
    jp_server_config["CondaSvcApp"]["allow_paths_outside_root"] = True
    return jp_server_config


async def test_notebook_output_cannot_overwrite_the_notebook_state_or_other_services(
    outside_root_config, api, root, state_dir
):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    for nb in ("a.ipynb", "b.ipynb"):
        nbformat.write(new_notebook(cells=[new_code_cell("1")]), str(root / nb))
    (root / "other.py").write_text("pass\n")
    (root / ".bashrc").write_text("# mine\n")
    for name, spec in (
        ("other", {"kind": "script", "env": "ml", "path": "other.py"}),
        ("bnb", {"kind": "notebook", "env": "nb", "path": "b.ipynb"}),
        ("cnb", {"kind": "notebook", "env": "nb", "path": "b.ipynb", "output": "c.out.ipynb"}),
    ):
        code, body = await api("POST", "services", body={"name": name, **spec})
        assert code == 201, body
    state_dir.mkdir(parents=True, exist_ok=True)
    refused = {
        "a.ipynb": "input notebook",
        str(root / "a.ipynb"): "input notebook",
        ".bashrc": ".ipynb",
        "other.py": ".ipynb",
        "b.ipynb": "service 'bnb'",
        "b.out.ipynb": "service 'bnb'",  # bnb's default output
        "c.out.ipynb": "service 'cnb'",
        str(state_dir / "records" / "x.ipynb"): "state",
        str(state_dir / "x.ipynb"): "state",
    }
    try:
        for output, why in refused.items():
            for path in (("services",), ("preview",)):
                code, body = await api(
                    "POST",
                    *path,
                    body={"name": "anb", "kind": "notebook", "env": "nb", "path": "a.ipynb", "output": output},
                )
                assert code == 400 and body["field"] == "output" and why in body["message"], (output, body)
        assert (root / ".bashrc").read_text() == "# mine\n"
        # a default output that is another service's file is refused too
        (root / "c.ipynb").write_bytes((root / "a.ipynb").read_bytes())
        code, body = await api(
            "POST", "preview", body={"name": "cc", "kind": "notebook", "env": "nb", "path": "c.ipynb"}
        )
        assert code == 400 and body["field"] == "output" and "cnb" in body["message"], body
        # an existing file that is not this service's earlier output: a warning before it is overwritten
        nbformat.write(new_notebook(), str(root / "keep.ipynb"))
        spec = {"name": "anb", "kind": "notebook", "env": "nb", "path": "a.ipynb", "output": "keep.ipynb"}
        code, preview = await api("POST", "preview", body=spec)
        assert code == 200 and any("keep.ipynb" in w and "overwrite" in w for w in preview["warnings"]), preview
        code, body = await api("POST", "services", body=spec)
        assert code == 201, body
        code, preview = await api("POST", "preview", body=spec)  # now it is this service's own output
        assert code == 200 and not any("overwrite" in w for w in preview["warnings"]), preview
    finally:
        for name in ("other", "bnb", "cnb", "anb"):
            await api("DELETE", "services", name)


# -- spoofed log lines (finding 8) ---------------------------------------------


async def test_spoofed_manager_lines_and_markers_are_marked_untrusted(api, root, unit_name, jp_ws_fetch):
    from systemd import journal as sdjournal

    from jupyter_condasvc.journal import MESSAGE_ID_DROPPED

    # it outlives its line a moment, so journald can attribute the line to the unit (docs/troubleshooting.md)
    await create(api, root, "victim", "import time\nprint('real line', flush=True)\ntime.sleep(0.3)\n", restart="no")
    await api("POST", "services", "victim", "start")
    unit = unit_name("victim")
    # any process of the user can name a unit and a MESSAGE_ID
    sdjournal.send("Started spoofed by a neighbour.", USER_UNIT=unit, SYSLOG_IDENTIFIER="systemd")
    sdjournal.send(
        "Suppressed 999 messages",
        USER_UNIT=unit,
        MESSAGE_ID=MESSAGE_ID_DROPPED,
        N_DROPPED="999",
        OBJECT_SYSTEMD_UNIT=f"user@{os.getuid()}.service",
    )

    async def page():
        code, body = await api("GET", "services", "victim", "logs", n="100")
        messages = [e["message"] for e in body["entries"]]
        return (
            "real line" in messages
            and any("spoofed" in m for m in messages)
            and any("999" in m for m in messages)
            and body["entries"]
        )

    entries = await wait_for(page, timeout=20)
    spoofed = [e for e in entries if "spoofed" in e["message"] or "999" in e["message"]]
    assert len(spoofed) == 2
    for e in spoofed:
        assert e.get("untrusted") is True and e["source"] == "service" and "marker" not in e, e
    real = [e for e in entries if e["message"] == "real line"]
    assert real and not real[0].get("untrusted") and real[0]["source"] == "service"
    manager = [e for e in entries if e["source"] == "manager"]
    assert manager and not any(e.get("untrusted") for e in manager), entries
    assert any(e["message"].startswith("Started ") for e in manager)
    # the follow socket classifies with the same code
    ws = await jp_ws_fetch("condasvc", "api", "services", "victim", "logs", "follow", params={"n": "100"})
    json.loads(await asyncio.wait_for(ws.read_message(), 10))
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    followed = [e for e in msg["entries"] if "spoofed" in e["message"] or "999" in e["message"]]
    assert followed and all(e.get("untrusted") and "marker" not in e for e in followed), msg
    ws.close()
    await api("DELETE", "services", "victim")


# -- secrets (finding 9) -------------------------------------------------------


async def test_unsecreting_a_variable_needs_its_value_again(api, root):
    await create(api, root, "unsecret", "pass\n", environment={"TOKEN": "hunter2", "OTHER": "x"}, secrets=["TOKEN"])
    for patch in (
        {"secrets": []},
        {"secrets": [], "environment": {"TOKEN": None, "OTHER": "x"}},
        {"secrets": [], "environment": {"TOKEN": "", "OTHER": "x"}},
    ):
        code, body = await api("PATCH", "services", "unsecret", body=patch)
        assert code == 400 and body["field"] == "secrets", (patch, body)
        code, svc = await api("GET", "services", "unsecret")
        assert svc["spec"]["environment"]["TOKEN"] is None and "hunter2" not in json.dumps(svc)
    # resending the value (or removing the variable) is allowed
    code, svc = await api(
        "PATCH", "services", "unsecret", body={"secrets": [], "environment": {"TOKEN": "new", "OTHER": "x"}}
    )
    assert code == 200 and svc["spec"]["environment"]["TOKEN"] == "new", svc
    code, svc = await api("PATCH", "services", "unsecret", body={"secrets": ["TOKEN"]})
    code, svc = await api("PATCH", "services", "unsecret", body={"secrets": [], "environment": {"OTHER": "x"}})
    assert code == 200 and "TOKEN" not in svc["spec"]["environment"], svc
    await api("DELETE", "services", "unsecret")
