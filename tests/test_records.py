"""The stored record (store.ServiceRecord) and the pure service view built from it (serviceview): no systemd."""

import json

from jupyter_condasvc.serviceview import service_status, service_view, timer_view
from jupyter_condasvc.store import ServiceRecord, ServiceStore, new_record
from jupyter_condasvc.timestamps import U64_MAX, usec_to_iso


def _store(tmp_path):
    return ServiceStore(tmp_path / "units", tmp_path / "state", prefix="t-")


def test_record_file_round_trips_and_keeps_unknown_keys(tmp_path):
    store = _store(tmp_path)
    record = new_record({"name": "a", "kind": "command"}, "t-a.service", {"exec_argv": ["/bin/true"]})
    store.claim("a", record)
    on_disk = json.loads(store.record_path("a").read_text())
    assert set(on_disk) == {"version", "spec", "unit", "resolved", "created", "updated"}, "unit_changed: after an edit"
    again = store.read_record("a")
    assert again == record
    # a key written by a newer version survives a rewrite by this one
    store.record_path("a").write_text(json.dumps({**on_disk, "future": {"x": 1}, "unit_changed": 5}))
    loaded = store.read_record("a")
    assert loaded.unit_changed == 5.0 and loaded.extra == {"future": {"x": 1}}
    store.write_record("a", loaded)
    assert json.loads(store.record_path("a").read_text())["future"] == {"x": 1}


def test_a_record_edited_into_garbage_is_still_a_record(tmp_path):
    store = _store(tmp_path)
    store.private_state_dir()
    store.record_path("bad").write_text("{not json")
    record = store.read_record("bad")
    assert record.unit == "t-bad.service" and record.spec == {"name": "bad"}
    assert record.broken and "is not JSON" in record.broken
    store.record_path("nospec").write_text(json.dumps({"unit": "t-nospec.service"}))
    assert "has no spec" in (store.read_record("nospec").broken or "")
    assert "broken" not in ServiceRecord(spec={}, unit="u", broken="x").to_json(), "never written back"


def test_known_record_is_what_load_all_read(tmp_path):
    store = _store(tmp_path)
    assert store.known_record("a") is None
    store.claim("a", new_record({"name": "a"}, "t-a.service", {}))
    store.unit_dir.mkdir(parents=True)
    store.unit_path("a").write_text("[Service]\nExecStart=/bin/true\n")  # a unit file we did not write
    assert store.load_all() == {} and store.known_record("a") is None, "not ours"
    store.unit_path("a").unlink()
    records = store.load_all()
    assert list(records) == ["a"] and store.known_record("a") is records["a"], "no I/O: the object load_all read"


def test_service_view_shape_and_unset_values():
    record = ServiceRecord(
        spec={"name": "a", "environment": {"K": "v"}, "secrets": ["K"]}, unit="t-a.service", created=1.0, updated=2.0
    )
    props = {
        "ActiveState": "active",
        "SubState": "running",
        "MainPID": 0,
        "ActiveEnterTimestamp": 1_000_000,
        "InactiveEnterTimestamp": 0,
    }
    status = service_status(record.spec, props, {"MemoryCurrent": U64_MAX, "CPUUsageNSec": 7})
    assert status["active_enter_timestamp"] == "1970-01-01T00:00:01.000000+00:00"
    assert status["inactive_enter_timestamp"] is None and status["main_pid"] is None
    assert (status["memory_current"], status["cpu_usage_nsec"]) == (None, 7)
    view = service_view("a", record, status, ["w"])
    assert list(view) == [
        "name",
        "unit",
        "spec",
        "resolved",
        "created",
        "updated",
        "unit_changed",
        "status",
        "warnings",
        "host",
    ]
    assert view["host"] == "local", "the host it runs on, from where it is seen"
    assert view["unit_changed"] == 1.0, "never changed: the creation"
    assert view["spec"]["environment"] == {"K": None}, "secrets are never shown"
    timer = timer_view({"ActiveState": "inactive", "NextElapseUSecRealtime": U64_MAX, "LastTriggerUSec": 0})
    assert timer == {
        "timer_state": "inactive",
        "armed": False,
        "timer_enabled": None,
        "next_run": None,
        "last_run": None,
    }


def test_one_converter_for_times():
    assert usec_to_iso(1795748858123456) == "2026-11-27T03:07:38.123456+00:00"
    assert usec_to_iso(1795748858000000) == "2026-11-27T03:07:38.000000+00:00", "always with microseconds"
