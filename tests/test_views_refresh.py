"""Memory/CPU readings (never signalled) are refreshed off the request path (jupyter_condasvc.views)."""

from __future__ import annotations

import asyncio
import json

import pytest

from helpers import UNIT_DIR, create, systemctl, wait_for
from openapi_contract import check_response

pytestmark = pytest.mark.systemd

SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n"
MAX_AGE = 0.5


@pytest.fixture
def jp_server_config(jp_server_config):
    return {**jp_server_config, "SystemdManager": {"unsignalled_max_age": MAX_AGE}}


async def _list(jp_fetch):
    resp = await jp_fetch("condasvc", "api", "services")
    body = json.loads(resp.body)
    check_response("GET", "/condasvc/api/services", resp.code, body)
    return resp.headers.get("ETag"), {s["name"]: s for s in body["services"]}


async def test_a_due_reading_is_served_then_refreshed_in_the_background(jp_fetch, api, root, unit_name, jp_serverapp):
    await create(api, root, "refresh-a", SLEEPER)
    systemctl("start", unit_name("refresh-a"), check=True)

    async def active():
        _, services = await _list(jp_fetch)
        return services["refresh-a"] if services["refresh-a"]["status"]["active_state"] == "active" else None

    await wait_for(active)
    shown = systemctl("show", "-p", "CPUUsageNSec", "-p", "MemoryCurrent", "--value", unit_name("refresh-a")).stdout
    if all(v.strip() in ("", "[not set]") for v in shown.splitlines()):
        pytest.skip("no CPU or memory accounting for services on this host: there is no reading to refresh")

    async def read():  # the first view of a run may come before its first reading (read in the background)
        s = (await active())["status"]
        return s if s["cpu_usage_nsec"] is not None or s["memory_current"] is not None else None

    status = await wait_for(read)
    await asyncio.sleep(1.0)  # systemd's signals about the start are in; the reading is due again
    await _list(jp_fetch)  # builds whatever those signals dropped, and schedules the due reading
    views = jp_serverapp.web_app.settings["condasvc_views"]

    async def idle():
        return views._refresher is None or views._refresher.done()

    await wait_for(idle)
    await asyncio.sleep(MAX_AGE + 0.2)  # due again, and nothing is refreshing it yet
    builds = views.builds
    etag, services = await _list(jp_fetch)
    # the piece with the due reading was served as it was: the request built nothing, waited on no call
    assert views.builds == builds
    assert services["refresh-a"]["status"]["active_state"] == "active"

    async def refreshed():
        e, s = await _list(jp_fetch)
        return (e, s) if e != etag else None

    # with no signal about the service, the list changes anyway: the reading was read again in the background
    _, services2 = await wait_for(refreshed)
    assert views.builds > builds
    assert services2["refresh-a"]["status"]["active_state"] == "active"
    assert (services2["refresh-a"]["status"]["cpu_usage_nsec"] is None) == (status["cpu_usage_nsec"] is None)


async def test_a_due_re_read_is_served_from_the_signals_then_done_in_the_background(
    jp_fetch, api, root, unit_name, jp_serverapp
):
    await create(api, root, "refresh-b", SLEEPER)
    unit = unit_name("refresh-b")
    systemctl("start", unit, check=True)

    async def active():
        _, services = await _list(jp_fetch)
        return services if services["refresh-b"]["status"]["active_state"] == "active" else None

    await wait_for(active)
    await asyncio.sleep(1.0)  # systemd's signals about the start are in
    views = jp_serverapp.web_app.settings["condasvc_views"]
    systemd = views.systemd
    body, etag = await views.list_json()
    assert systemd.cached_properties(unit) is not None

    # what a job's end does: the unit's properties are due for a re-read (something no signal says may differ)
    systemd._mark_stale(unit)
    builds = views.builds
    body2, etag2 = await views.list_json()
    # answered at once from what the signals say: nothing was read or built in the request
    assert (body2, etag2) == (body, etag)
    assert views.builds == builds
    assert systemd.cached_properties(unit) is None
    assert views._refresher is not None and not views._refresher.done()

    # the re-read and the rebuild happen in the background; the next list has them (same content: nothing changed)
    await views._refresher
    assert systemd.cached_properties(unit) is not None
    assert views.builds > builds
    body3, etag3 = await views.list_json()
    assert etag3 != etag

    def status(text):
        s = next(s for s in json.loads(text)["services"] if s["name"] == "refresh-b")["status"]
        return s["active_state"], s["sub_state"], s["main_pid"]

    assert status(body3) == status(body)


async def test_the_unit_text_is_kept_until_its_folder_changes(api, root, unit_name):
    await create(api, root, "refresh-c", SLEEPER)
    code, first = await api("GET", "services", "refresh-c", "unit")
    assert code == 200 and "ExecStart=" in first["unit"]
    code, again = await api("GET", "services", "refresh-c", "unit")
    assert (code, again) == (200, first)
    # edited by hand (still ours: the header stays): the next answer has the edit
    path = UNIT_DIR / unit_name("refresh-c")
    path.write_text(path.read_text() + "# edited by hand\n")
    code, edited = await api("GET", "services", "refresh-c", "unit")
    assert code == 200 and edited["unit"].endswith("# edited by hand\n")
    # gone: 404, not the kept text
    code, _ = await api("DELETE", "services", "refresh-c")
    assert code == 204
    code, _ = await api("GET", "services", "refresh-c", "unit")
    assert code == 404


async def test_a_due_host_report_is_answered_while_the_next_is_computed(jp_serverapp):
    cache = jp_serverapp.web_app.settings["condasvc_host"]
    cache.max_age = 0.5
    first = await cache.get_json()
    computed = cache.computed
    assert computed >= 1
    assert await cache.get_json() == first and cache.computed == computed  # reused

    await asyncio.sleep(0.6)  # due, not long overdue: the last report at once, the next one computed meanwhile
    assert await cache.get_json() == first
    assert cache.computed == computed
    await asyncio.shield(cache._computing)
    assert cache.computed == computed + 1

    await asyncio.sleep(1.1)  # more than twice max_age old: the request waits for a new one
    await cache.get_json()
    assert cache.computed == computed + 2
