"""The cached views (jupyter_condasvc.views) against the real user manager: never stale, 304 only when unchanged."""

from __future__ import annotations

import json

import pytest

from helpers import create, systemctl, wait_for
from openapi_contract import check_response

pytestmark = pytest.mark.systemd

SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n"


@pytest.fixture
def jp_server_config(jp_server_config):
    # memory/CPU readings (never signalled) are reused for this long: views stay put during a test
    return {**jp_server_config, "SystemdManager": {"unsignalled_max_age": 3600.0}}


async def _list(jp_fetch, etag=None):
    headers = {"If-None-Match": etag} if etag else {}
    resp = await jp_fetch("condasvc", "api", "services", headers=headers, raise_error=False)
    body = json.loads(resp.body) if resp.body else None
    check_response("GET", "/condasvc/api/services", resp.code, body)
    return resp.code, resp.headers.get("ETag"), body


async def _settled_etag(jp_fetch, etag=None):
    """Wait until the list answers 304 for the last ETag seen (signals about a change may trail it); that ETag."""
    last = [etag]

    async def stable():
        c, e, _ = await _list(jp_fetch, last[0])
        if c == 304:
            return e
        last[0] = e
        return None

    return await wait_for(stable)


def _state(body, name):
    return next(s["status"]["active_state"] for s in body["services"] if s["name"] == name)


async def test_list_answers_304_until_a_state_change(jp_fetch, api, root, unit_name, state_dir):
    await create(api, root, "cache-a", SLEEPER)
    etag = await _settled_etag(jp_fetch)  # the create's daemon-reload is signalled asynchronously
    code, etag, body = await _list(jp_fetch)
    assert code == 200 and etag
    assert _state(body, "cache-a") == "inactive"

    # nothing changed: the same ETag, and 304 with no body for a client that has it
    code2, etag2, body2 = await _list(jp_fetch)
    assert (code2, etag2) == (200, etag) and body2 == body
    code3, etag3, body3 = await _list(jp_fetch, etag)
    assert (code3, etag3, body3) == (304, etag, None)

    # a state change made outside the API (systemctl): the next list has it, under a new ETag
    systemctl("start", unit_name("cache-a"), check=True)

    async def started():
        c, e, b = await _list(jp_fetch, etag)
        return (c, e, b) if c == 200 and _state(b, "cache-a") == "active" else None

    code4, etag4, body4 = await wait_for(started)
    assert etag4 != etag

    # once systemd's signals about the start are over, it is stable again
    etag4 = await _settled_etag(jp_fetch, etag4)

    # an edit through the API changes the record: a new list at once, with the new description
    code, _ = await api("PATCH", "services", "cache-a", body={"description": "edited"})
    assert code == 200
    code5, etag5, body5 = await _list(jp_fetch, etag4)
    assert code5 == 200 and etag5 != etag4
    assert next(s for s in body5["services"] if s["name"] == "cache-a")["spec"]["description"] == "edited"

    # a record edited by hand, in place (no rename): the list shows it at once
    record = state_dir / "records" / "cache-a.json"
    data = json.loads(record.read_text())
    data["spec"]["description"] = "edited by hand"
    with open(record, "r+") as fh:
        fh.write(json.dumps(data))
        fh.truncate()
    code5b, etag5b, body5b = await _list(jp_fetch, etag5)
    assert code5b == 200 and etag5b != etag5
    assert next(s for s in body5b["services"] if s["name"] == "cache-a")["spec"]["description"] == "edited by hand"
    code, one = await api("GET", "services", "cache-a")
    assert one["spec"]["description"] == "edited by hand"
    etag5 = etag5b

    # a new service and a deleted one change the set
    await create(api, root, "cache-b", SLEEPER)
    code6, etag6, body6 = await _list(jp_fetch, etag5)
    assert code6 == 200 and {s["name"] for s in body6["services"]} == {"cache-a", "cache-b"}
    code, _ = await api("DELETE", "services", "cache-b")
    assert code == 204
    code7, etag7, body7 = await _list(jp_fetch, etag6)
    assert code7 == 200 and etag7 not in (etag5, etag6)
    assert [s["name"] for s in body7["services"]] == ["cache-a"]


async def test_list_matches_uncached_answers(jp_fetch, api, root, unit_name, jp_serverapp):
    """Every piece of the cached list equals what GET services/{name} computes afresh."""
    await create(api, root, "cache-c", SLEEPER)
    await create(api, root, "cache-d", "import sys\nsys.exit(3)\n", restart="no")
    systemctl("start", unit_name("cache-c"), check=True)
    systemctl("start", unit_name("cache-d"))

    async def settled():
        c, _, b = await _list(jp_fetch)
        return b if _state(b, "cache-c") == "active" and _state(b, "cache-d") == "failed" else None

    body = await wait_for(settled)
    for svc in body["services"]:
        code, one = await api("GET", "services", svc["name"])
        assert code == 200
        assert one["status"]["active_state"] == svc["status"]["active_state"]
        assert one["status"]["main_pid"] == svc["status"]["main_pid"]
        assert one["status"]["result"] == svc["status"]["result"]
        assert one["spec"] == svc["spec"]
    # once systemd's last signals about them are in, a list rebuilds nothing
    etag = await _settled_etag(jp_fetch)
    views = jp_serverapp.web_app.settings["condasvc_views"]
    builds = views.builds
    assert (await _list(jp_fetch))[:2] == (200, etag)
    assert views.builds == builds, "an unchanged list must not rebuild any service's view"
