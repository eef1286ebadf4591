"""Hostile input: OpenAPI-driven fuzzing, systemd-parser round trips, path traversal, foreign units.

* schemathesis generates requests for every operation in ``openapi.yaml`` and
  sends them, with a token, to a real ``jupyter server`` subprocess: no answer
  may be a 5xx, every answer must be one the document lists, with the
  documented body; afterwards no unit file outside this run's prefix has
  appeared or changed, and every file with the prefix is one of ours.
  ``CONDASVC_FUZZ_EXAMPLES`` (default 15 per operation) sets the size.
* Description and working directory (argv and variables are in
  test_roundtrip_property.py): any string either reads back exactly from
  systemd's own parse of the unit (D-Bus properties) or is refused with 400,
  and nothing in it becomes a directive, a specifier or a variable expansion.
* Paths: ``..``, absolute paths and symlinks out of the server root are 400
  for path, cwd and output.
* Units the extension did not create (``dbus.service`` with an empty prefix):
  the API cannot edit, start, stop or delete them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import PREFIX, UNIT_DIR, systemctl
from jupyter_condasvc.units import is_managed, user_argv

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(3600)]

FUZZ_EXAMPLES = int(os.environ.get("CONDASVC_FUZZ_EXAMPLES") or 15)


def snapshot_units():
    """path (relative to the unit dir) -> sha256 of content, or link target, for every file."""
    out = {}
    for p in sorted(UNIT_DIR.rglob("*")):
        rel = str(p.relative_to(UNIT_DIR))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# -- schemathesis against a real server --------------------------------------

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import checks as st_checks  # noqa: E402
from schemathesis.specs.openapi import checks as oa_checks  # noqa: E402

from openapi_contract import SPEC_PATH  # noqa: E402

FUZZ_PREFIX = f"fz{uuid.uuid4().hex[:6]}-"
schema = schemathesis.openapi.from_path(str(SPEC_PATH))
# POST host/linger changes the test user's linger through logind on a booted host (a change outside this
# run): its 400s and the no-logind 503 are in test_linger_limits.py, the real thing in tests/booted/.
schema = schema.exclude(path="/condasvc/api/host/linger")
CHECKS = [
    st_checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
]
RESULTS = {"cases": 0, "5xx": 0, "by_status": {}}


class LoggedServer:
    """test_server_restart's Server, with stderr to a file: thousands of refused requests fill a pipe nobody reads."""

    def __new__(cls, root, conda_root, state, prefix, log):
        import subprocess

        import test_server_restart

        real_popen = subprocess.Popen

        def popen(argv, **kwargs):
            kwargs["stderr"] = log
            return real_popen(argv, **kwargs)

        test_server_restart.subprocess.Popen = popen
        try:
            return test_server_restart.Server(root, conda_root, state, prefix)
        finally:
            test_server_restart.subprocess.Popen = real_popen


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, conda_root):
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "root"
    root.mkdir()
    (root / "a.py").write_text("import time\ntime.sleep(5)\n")
    (root / "n.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (root / "d").mkdir()
    os.symlink("/etc", root / "out")
    before = snapshot_units()
    log = open(base / "server.log", "wb")
    server = LoggedServer(root, conda_root, base / "state", FUZZ_PREFIX, log)
    yield server
    try:
        code, listing = server.call("GET", "condasvc/api/services")
        for svc in (listing or {}).get("services", []):
            server.call("DELETE", f"condasvc/api/services/{svc['name']}")
    finally:
        server.stop()
        log.close()
        leftovers = [p for p in UNIT_DIR.rglob(f"{FUZZ_PREFIX}*")]
        for p in leftovers:
            systemctl("stop", p.name)
            p.unlink()
        systemctl("daemon-reload")
        systemctl("reset-failed")
    after = snapshot_units()
    # this run's other tests (PREFIX) make and drop units of their own while this module-scoped server lives
    foreign_changed = {
        k
        for k in set(before) | set(after)
        if FUZZ_PREFIX not in k and PREFIX not in k and before.get(k) != after.get(k)
    }
    assert not foreign_changed, f"the fuzzer changed units that are not this run's: {sorted(foreign_changed)}"
    print(
        f"\nfuzz: {RESULTS['cases']} cases, {RESULTS['5xx']} 5xx, statuses {dict(sorted(RESULTS['by_status'].items()))}"
    )


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_fuzz(case, fuzz_server):
    response = case.call(
        base_url=fuzz_server.url.rstrip("/"), headers={"Authorization": f"token {fuzz_server.token}"}, timeout=120
    )
    RESULTS["cases"] += 1
    RESULTS["by_status"][response.status_code] = RESULTS["by_status"].get(response.status_code, 0) + 1
    if response.status_code >= 500:
        RESULTS["5xx"] += 1
    case.validate_response(response, checks=CHECKS)
    # every unit file of this run is one of ours, intact
    for p in UNIT_DIR.glob(f"{FUZZ_PREFIX}*"):
        assert is_managed(p.read_text(encoding="utf-8", errors="replace")), p


# -- round trips through systemd's parser ---------------------------------------

counter = iter(range(10**6))


def _command(name, **field):
    """A quick command service's spec with one FIELD under test."""
    return {"name": name, "kind": "command", "env": "ml", "argv": ["python", "-V"], "restart": "no", **field}


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
hostile = st.sampled_from(
    [
        "\n[Service]\nExecStartPre=/bin/touch /tmp/pwned",
        "x\\\n[Service]\nExecStartPre=/bin/true",
        "%h",
        "%%h",
        "$HOME",
        "${HOME}",
        "a\\",
        "\\",
        "  lead",
        "trail ",
        "\t",
        "%",
        "%n %i %u",
        "\\x41",
        "\\n",
        '"quoted"',
        "'single'",
        ";",
        "a\x1bb",
        "\x7f",
        "\u2028",
        "\u0085",
        "-",
        "~",
        "@",
        "!",
        "+",
        ":",
    ]
)


@settings(suppress_health_check=list(HealthCheck))
@given(value=st.one_of(hostile, text, st.builds(lambda a, b: a + b, hostile, text)))
def test_description_round_trips(api, root, jp_serverapp, jp_asyncio_loop, value):
    jp_asyncio_loop.run_until_complete(_description(api, jp_serverapp, value))


async def _description(api, jp_serverapp, value):
    name = f"desc{next(counter)}"
    spec = _command(name, description=value)

    def expect(props):
        assert props["Description"] == (value or f"{name} (conda env ml)")

    await _round_trip(api, jp_serverapp, spec, "description", expect)


dir_names = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=30
).filter(lambda s: s not in (".", "..") and len(s.encode()) <= 255)


@settings(suppress_health_check=list(HealthCheck))
@given(dirname=st.one_of(hostile.filter(lambda s: "/" not in s and s not in ("", ".", "..")), dir_names))
def test_working_directory_round_trips(api, root, jp_serverapp, jp_asyncio_loop, dirname):
    jp_asyncio_loop.run_until_complete(_cwd(api, root, jp_serverapp, dirname))


async def _cwd(api, root, jp_serverapp, dirname):
    name = f"cwd{next(counter)}"
    parent = root / name
    parent.mkdir()
    try:
        (parent / dirname).mkdir()
    except OSError:
        return  # not a name this file system takes
    cwd = os.path.realpath(parent / dirname)
    spec = _command(name, cwd=f"{name}/{dirname}")

    def expect(props):
        assert props["WorkingDirectory"] == cwd

    try:
        await _round_trip(api, jp_serverapp, spec, "cwd", expect)
    finally:
        shutil.rmtree(parent)


async def _round_trip(api, jp_serverapp, spec, field, expect):
    """Create SPEC: either a 400 naming FIELD with nothing written, or a unit systemd loads, whose properties
    EXPECT accepts and carry no injected line; deleted again."""
    name = spec["name"]
    code, body = await api("POST", "services", body=spec)
    if code == 400:
        assert body["field"] == field, body
        assert not list(UNIT_DIR.glob(f"{PREFIX}{name}.*"))
        return
    assert code == 201, body
    try:
        props = await _props(jp_serverapp, name)
        assert props["LoadState"] == "loaded", props.get("LoadError")
        expect(props)
        _no_injection(props)
    finally:
        assert (await api("DELETE", "services", name))[0] == 204


async def _props(jp_serverapp, name):
    systemd = jp_serverapp.web_app.settings["condasvc_systemd"]
    return await systemd.get_unit_properties(f"{PREFIX}{name}.service", fresh=True)


def _no_injection(props):
    """Only the directives we write: one ExecStart, no ExecStartPre/Post, only our Environment= names."""
    assert props["ExecStartPre"] == [] and props["ExecStartPost"] == [], props["ExecStartPre"]
    assert len(props["ExecStart"]) == 1 and user_argv(props["ExecStart"][0][1])[1:] == ["-V"], props["ExecStart"]
    names = sorted(a.split("=", 1)[0] for a in props["Environment"])
    assert names == ["CONDA_DEFAULT_ENV", "CONDA_PREFIX", "PATH", "PYTHONUNBUFFERED"], props["Environment"]


# -- path traversal ------------------------------------------------------------


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    (d / "evil.py").write_text("print('outside')\n")
    (d / "evil.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return d


@pytest.mark.parametrize(
    "field,value",
    [
        ("path", "../outside/evil.py"),
        ("path", "../../../../../../etc/passwd"),
        ("path", "sub/../../outside/evil.py"),
        ("path", "{outside}/evil.py"),
        ("path", "link/evil.py"),
        ("path", "~/evil.py"),
        ("cwd", ".."),
        ("cwd", "/tmp"),
        ("cwd", "link"),
        ("cwd", "sub/../../outside"),
        ("cwd", "{outside}"),
        ("cwd", "/"),
    ],
)
async def test_paths_out_of_the_root_are_refused(api, root, outside, field, value):
    (root / "sub").mkdir()
    (root / "ok.py").write_text("print(1)\n")
    (root / "link").symlink_to(outside)
    body = {"name": "trav", "kind": "script", "env": "ml", "path": "ok.py", field: value.format(outside=outside)}
    for verb in ("POST", "PREVIEW"):
        if verb == "POST":
            code, err = await api("POST", "services", body=body)
        else:
            code, err = await api("POST", "preview", body=body)
        assert code == 400, (verb, err)
        assert err["field"] == field, err
    assert not list(UNIT_DIR.glob(f"{PREFIX}trav*"))
    # an edit cannot smuggle it in either
    code, svc = await api("POST", "services", body={"name": "trav", "kind": "script", "env": "ml", "path": "ok.py"})
    assert code == 201, svc
    code, err = await api("PATCH", "services", "trav", body={field: value.format(outside=outside)})
    assert code == 400 and err["field"] == field, err
    assert "outside" not in (UNIT_DIR / f"{PREFIX}trav.service").read_text()
    assert (await api("DELETE", "services", "trav"))[0] == 204


@pytest.mark.parametrize(
    "value", ["../outside/run.ipynb", "{outside}/run.ipynb", "link/run.ipynb", "sub/../../x.ipynb"]
)
async def test_notebook_output_out_of_the_root_is_refused(api, root, outside, value):
    (root / "sub").mkdir()
    (root / "link").symlink_to(outside)
    (root / "nb.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    code, err = await api(
        "POST",
        "services",
        body={
            "name": "nbout",
            "kind": "notebook",
            "env": "nb",
            "path": "nb.ipynb",
            "output": value.format(outside=outside),
        },
    )
    assert code == 400 and err["field"] == "output", err


async def test_symlink_inside_the_root_is_fine(api, root):
    (root / "real").mkdir()
    (root / "real" / "ok.py").write_text("print(1)\n")
    (root / "alias").symlink_to(root / "real")
    code, svc = await api(
        "POST", "services", body={"name": "alias", "kind": "script", "env": "ml", "path": "alias/ok.py"}
    )
    assert code == 201, svc
    assert svc["resolved"]["exec_argv"][2] == str((root / "real" / "ok.py").resolve())


# -- units we did not create ---------------------------------------------------


class TestForeignUnits:
    """With an empty unit prefix, service names are bare unit names: dbus, systemd-tmpfiles-clean (and its
    timer), a hand-written unit."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        cfg = json.loads(json.dumps(jp_server_config))
        cfg["CondaSvcApp"]["unit_prefix"] = ""
        return cfg

    async def test_cannot_touch_foreign_units(self, api, root):
        hand = f"{PREFIX}byhand"
        path = UNIT_DIR / f"{hand}.service"
        original = "[Unit]\nDescription=mine\n\n[Service]\nExecStart=/bin/sleep 300\n"
        path.write_text(original)
        systemctl("daemon-reload")
        systemctl("start", f"{hand}.service")
        try:
            dbus_pid = systemctl("show", "-p", "MainPID", "--value", "dbus.service").stdout.strip()
            before = snapshot_units()
            (root / "a.py").write_text("print(1)\n")
            for name in ("dbus", "systemd-tmpfiles-clean", hand):
                code, err = await api(
                    "POST", "services", body={"name": name, "kind": "script", "env": "ml", "path": "a.py"}
                )
                assert code == 409, (name, err)
                for method, sub, body in (
                    ("GET", (), None),
                    ("PATCH", (), {"args": ["x"]}),
                    ("DELETE", (), None),
                    ("GET", ("unit",), None),
                    ("GET", ("logs",), None),
                    *(
                        ("POST", (a,), None)
                        for a in ("start", "stop", "restart", "enable", "disable", "reset-failed", "run-now")
                    ),
                ):
                    code, err = await api(method, "services", name, *sub, body=body)
                    assert code in (403, 404), (name, method, sub, code, err)
            assert snapshot_units() == before
            assert path.read_text() == original
            assert systemctl("is-active", f"{hand}.service").stdout.strip() == "active"
            assert systemctl("show", "-p", "MainPID", "--value", "dbus.service").stdout.strip() == dbus_pid
            code, listing = await api("GET", "services")
            assert code == 200 and listing["services"] == []
        finally:
            systemctl("stop", f"{hand}.service")
            path.unlink()
            # should the product regress and write one of these, do not leave the user's dbus shadowed
            for name in ("dbus.service", "systemd-tmpfiles-clean.service", "systemd-tmpfiles-clean.timer"):
                (UNIT_DIR / name).unlink(missing_ok=True)
            systemctl("daemon-reload")


@pytest.mark.parametrize(
    "path",
    [
        "services/" + "a" * 65,
        "services/%C2%84",
        "services/-x",
        "services/x/Start",
        "services/x/start/now",
        "nonsense",
        "services/x/logs/follow/more",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_routes_answer_json_404(jp_fetch, path, method):
    resp = await jp_fetch(
        "condasvc", "api", *path.split("/"), method=method, raise_error=False, body=b"{}" if method == "POST" else None
    )
    assert resp.code == 404, resp.body
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "No such endpoint" in json.loads(resp.body)["message"]
