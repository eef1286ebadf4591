"""Start/stop/restart of one service asked for while the same action is queued share it (ServiceManager.act)."""

from __future__ import annotations

import asyncio

import pytest

from helpers import create

pytestmark = pytest.mark.systemd

# stops slowly (1.5 s after SIGTERM), so a restart of it is surely under way while the next ones are asked for
SLOW_STOP = (
    "import signal, sys, time\n"
    "def bye(*_):\n"
    "    time.sleep(1.5)\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "while True:\n"
    "    time.sleep(1)\n"
)


async def test_restarts_queued_behind_one_under_way_share_one_job(api, root, state_dir):
    await create(api, root, "slowstop", SLOW_STOP, restart="no")
    code, _ = await api("POST", "services", "slowstop", "start")
    assert code == 200
    manual = state_dir / "runs" / "slowstop" / "manual-jobs"
    assert len(manual.read_text().splitlines()) == 1  # the start
    await asyncio.sleep(1.5)  # its SIGTERM handler is in place

    first = asyncio.ensure_future(api("POST", "services", "slowstop", "restart"))
    await asyncio.sleep(0.3)  # it holds the service now: systemd is stopping the old process
    assert not first.done()
    second, third = await asyncio.gather(
        api("POST", "services", "slowstop", "restart"), api("POST", "services", "slowstop", "restart")
    )
    answers = [await first, second, third]
    assert [code for code, _ in answers] == [200, 200, 200], answers
    # (the first's answer is read after it let go of the service: it may show the next restart under way)
    assert second == third and second[1]["status"]["active_state"] == "active", second
    # the first began before the others were asked for: it counts alone; the two queued behind it shared one job
    jobs = manual.read_text().splitlines()
    assert len(jobs) == 3, jobs
