"""Spec validation: every field's bad input is refused, naming the field."""

import pytest

from jupyter_condasvc.errors import InvalidSpec
from jupyter_condasvc.spec import ServiceSpec, merge_patch, parse_spec

GOOD = {"name": "pytorch-inference-api-v1", "kind": "script", "env": "ml", "path": "train.py"}


def test_good_script_spec():
    spec = parse_spec(GOOD)
    assert spec.name == "pytorch-inference-api-v1"
    assert spec.args == [] and spec.environment == {} and spec.enabled is False
    assert spec.restart is None  # defaults come from configuration


def test_good_command_spec():
    spec = parse_spec({"name": "lab", "kind": "command", "env": "base", "argv": ["jupyter", "lab", "--no-browser"]})
    assert spec.argv == ["jupyter", "lab", "--no-browser"]


BAD = [
    ({"name": ""}, "name"),
    ({"name": "a b"}, "name"),
    ({"name": "-leading"}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"name": "foo@bar"}, "name"),
    ({"name": "foo.service"}, "name"),
    ({"name": "../etc"}, "name"),
    ({"name": 3}, "name"),
    ({"kind": "daemon"}, "kind"),
    ({"env": ""}, "env"),
    ({"env": "a\nb"}, "env"),
    ({"path": None}, "path"),
    ({"path": "a\nb.py"}, "path"),
    ({"path": "a\x00b.py"}, "path"),
    ({"argv": ["python"]}, "argv"),
    ({"args": ["ok", "bad\nline"]}, "args"),
    ({"args": "notalist"}, "args"),
    ({"cwd": "x\ry"}, "cwd"),
    ({"environment": {"1BAD": "x"}}, "environment"),
    ({"environment": {"PATH": "/x"}}, "environment"),
    ({"environment": {"A": "x\x00"}}, "environment"),
    ({"environment": {"A": 3}}, "environment"),
    ({"restart": "sometimes"}, "restart"),
    ({"restart_sec": -1}, "restart_sec"),
    ({"restart_sec": "soon"}, "restart_sec"),
    ({"start_limit_burst": -2}, "start_limit_burst"),
    ({"start_limit_interval_sec": -1}, "start_limit_interval_sec"),
    ({"memory_max": "lots"}, "memory_max"),
    ({"memory_max": "5X"}, "memory_max"),
    ({"cpu_quota": "50"}, "cpu_quota"),
    ({"cpu_quota": "0%"}, "cpu_quota"),
    ({"enabled": "maybe"}, "enabled"),
    ({"description": " padded"}, "description"),
    ({"description": "two\nlines"}, "description"),
    ({"parameters": {"x": 1}}, "parameters"),
    ({"output": "o.ipynb"}, "output"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize("change,field", BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_field_is_named(change, field):
    data = {**GOOD, **change}
    with pytest.raises(InvalidSpec) as info:
        parse_spec(data)
    assert info.value.field == field, info.value.message
    assert field in info.value.message or field == "surprise"
    assert info.value.status == 400


def test_missing_required_field():
    with pytest.raises(InvalidSpec) as info:
        parse_spec({"name": "x", "kind": "script", "path": "a.py"})
    assert info.value.field == "env"
    assert "required" in info.value.message


def test_body_must_be_object():
    with pytest.raises(InvalidSpec):
        parse_spec(["not", "a", "dict"])


def test_notebook_needs_ipynb_and_takes_parameters():
    with pytest.raises(InvalidSpec) as info:
        parse_spec({**GOOD, "kind": "notebook"})
    assert info.value.field == "path"
    spec = parse_spec({**GOOD, "kind": "notebook", "path": "nb.ipynb", "parameters": {"alpha": 0.5, "tags": ["a"]}})
    assert spec.parameters == {"alpha": 0.5, "tags": ["a"]}
    with pytest.raises(InvalidSpec) as info:
        parse_spec({**GOOD, "kind": "notebook", "path": "nb.ipynb", "parameters": {"class": 1}})
    assert info.value.field == "parameters"


def test_merge_patch_resets_with_null_and_refuses_rename():
    spec = parse_spec({**GOOD, "args": ["--epochs", "3"], "restart": "always"})
    patched = merge_patch(spec, {"args": None, "restart_sec": 2})
    assert patched.args == [] and patched.restart_sec == 2 and patched.restart == "always"
    with pytest.raises(InvalidSpec) as info:
        merge_patch(spec, {"name": "other"})
    assert info.value.field == "name"
    with pytest.raises(InvalidSpec) as info:
        merge_patch(spec, {"restart": "never"})
    assert info.value.field == "restart"


def test_schema_is_exported():
    schema = ServiceSpec.model_json_schema()
    assert set(schema["required"]) == {"name", "kind", "env"}


def test_openapi_spec_schema_matches_the_model():
    from openapi_contract import document

    documented = document()["components"]["schemas"]["ServiceSpec"]
    model = ServiceSpec.model_json_schema()
    assert set(documented["properties"]) == set(model["properties"])
    assert set(documented["required"]) == set(model["required"])


def test_health_check_model_keeps_the_stored_and_wire_shape():
    """health_check is a typed submodel; what is stored and shown is still validate_check's dict, keys in order."""
    from jupyter_condasvc.health import validate_check
    from jupyter_condasvc.spec import HealthCheck
    from openapi_contract import document

    given = {"type": "tcp", "host": "::1", "port": 5432, "failure_threshold": 7}
    spec = parse_spec({"name": "db", "kind": "command", "env": "base", "argv": ["x"], "health_check": given})
    assert isinstance(spec.health_check, HealthCheck) and spec.health_check.port == 5432
    dumped = spec.model_dump()["health_check"]
    assert list(dumped.items()) == list(validate_check(given).items())
    assert parse_spec(spec.model_dump()) == spec, "a stored spec parses back to the same model"
    documented = document()["components"]["schemas"]["ServiceSpec"]["properties"]["health_check"]["properties"]
    assert list(documented) == list(HealthCheck.model_fields)
    with pytest.raises(InvalidSpec) as info:
        parse_spec({"name": "db", "kind": "command", "env": "base", "argv": ["x"], "health_check": "tcp"})
    assert info.value.field == "health_check" and "must be an object" in info.value.message


def test_actions_are_listed_once():
    """The API's action enum, the route and the CLI all come from actions.ACTIONS."""
    import re

    from jupyter_condasvc.actions import ACTION_PATTERN, ACTIONS
    from jupyter_condasvc.cli import COMMANDS
    from openapi_contract import document

    enum = next(
        p
        for p in document()["paths"]["/condasvc/api/services/{name}/{action}"]["parameters"]
        if p.get("name") == "action"
    )["schema"]["enum"]
    assert enum == list(ACTIONS)
    assert all(re.fullmatch(ACTION_PATTERN, a) for a in ACTIONS)
    assert not re.fullmatch(ACTION_PATTERN, "unit") and not re.fullmatch(ACTION_PATTERN, "logs")
    assert set(ACTIONS) <= set(COMMANDS)


def test_contract_checker_catches_mismatches():
    from openapi_contract import check_response

    check_response("GET", "/condasvc/api/services", 200, {"services": [], "hosts": []})
    with pytest.raises(AssertionError):  # every list says which hosts it covers
        check_response("GET", "/condasvc/api/services", 200, {"services": []})
    with pytest.raises(AssertionError):
        check_response("GET", "/condasvc/api/services", 200, {"services": [{"name": 1}]})
    with pytest.raises(AssertionError):
        check_response("GET", "/condasvc/api/services", 418, None)
    with pytest.raises(AssertionError):
        check_response("PUT", "/condasvc/api/services/x", 200, {})
