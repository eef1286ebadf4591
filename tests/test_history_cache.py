"""History pages served again whole (journal.history.PageCache): only while provably unchanged."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import stopped, wait_for
from jupyter_condasvc import journal as J  # noqa: N812  (J.name reads as the module)

SCRIPT = r"""
import sys, time
for i in range(6):
    print(f"cached line {i}")
print("CACHE-DONE")
sys.stdout.flush()
# alive while journald reads the lines: it takes the unit (_SYSTEMD_USER_UNIT) from the writer's cgroup, and
# lines of a process already gone come without it (seen here), so they would not be the unit's at all
time.sleep(1.0)
"""


async def _page(api, name, **params):
    code, page = await api("GET", "services", name, "logs", **params)
    assert code == 200, page
    return page


def _messages(page):
    return [e["message"] for e in page["entries"]]


async def _late_line(api, name, unit, text):
    """An entry for the unit written now (USER_UNIT=, as a process of the user may send): shown, marked untrusted."""
    from systemd import journal

    journal.send(text, USER_UNIT=unit)

    async def seen():
        return text in _messages(await _page(api, name, n="50")) or None

    await wait_for(seen, timeout=30)


@pytest.mark.systemd
async def test_pages_are_served_again_only_while_unchanged(api, root, unit_name):
    (root / "pc.py").write_text(SCRIPT)
    code, svc = await api(
        "POST", "services", body={"name": "pc", "kind": "script", "env": "ml", "path": "pc.py", "restart": "no"}
    )
    assert code == 201, svc
    await api("POST", "services", "pc", "start")
    await wait_for(lambda: stopped(api, "pc"), timeout=30)

    async def done():
        return "CACHE-DONE" in _messages(await _page(api, "pc", n="50")) or None

    await wait_for(done, timeout=30)
    await asyncio.sleep(0.5)  # the manager's last lines about the stop
    unit = unit_name("pc")
    J.PAGE_CACHE.clear()

    # the same tail page twice: the second is the kept page, equal in every field
    hits = J.PAGE_CACHE.hits
    first = await _page(api, "pc", n="4")
    again = await _page(api, "pc", n="4")
    assert again == first and J.PAGE_CACHE.hits == hits + 1
    older = await _page(api, "pc", n="3", before=first["first_cursor"])
    assert (await _page(api, "pc", n="3", before=first["first_cursor"])) == older
    forward = await _page(api, "pc", n="100", after=older["last_cursor"])
    assert _messages(forward) == _messages(first)
    assert forward["more_after"] is False

    # a new entry for the unit: the tail page and the open-ended after= page show it at once, not the kept pages
    await _late_line(api, "pc", unit, "late line one")
    grown = J.PAGE_CACHE.grown
    tail = await _page(api, "pc", n="4")
    assert _messages(tail)[-1] == "late line one" and tail["entries"][-1]["untrusted"] is True
    assert _messages(tail)[:-1] == _messages(first)[1:]
    assert J.PAGE_CACHE.grown == grown + 1  # the kept tail page grew by the new entry instead of being read again
    longer = await _page(api, "pc", n="100", after=older["last_cursor"])
    assert _messages(longer) == [*_messages(forward), "late line one"]
    # a before= page cannot gain entries: served again, unchanged, through the new entry
    hits = J.PAGE_CACHE.hits
    assert (await _page(api, "pc", n="3", before=first["first_cursor"])) == older
    assert J.PAGE_CACHE.hits == hits + 1
    # the grown page is what a new read gives, field for field
    J.PAGE_CACHE.clear()
    assert (await _page(api, "pc", n="4")) == tail
    # a filtered page is kept under its own key and follows the same rule
    hits = J.PAGE_CACHE.hits
    filtered = await _page(api, "pc", n="10", text="late line")
    assert _messages(filtered) == ["late line one"]
    assert (await _page(api, "pc", n="10", text="late line")) == filtered and J.PAGE_CACHE.hits == hits + 1
    await _late_line(api, "pc", unit, "late line two")
    assert _messages(await _page(api, "pc", n="10", text="late line")) == ["late line one", "late line two"]


class _Reader:
    """Just enough of a journal reader for the page cache's two checks: entries by cursor, oldest first."""

    def __init__(self, cursors):
        self.cursors, self.pos = list(cursors), None

    def seek_tail(self):
        self.pos = len(self.cursors)

    def _previous(self):
        if not self.pos:
            return False
        self.pos -= 1
        return True

    def _get_cursor(self):
        return self.cursors[self.pos]

    def seek_cursor(self, cursor):  # sd-journal lands on the entry, or where it would be
        later = [i for i, c in enumerate(self.cursors) if c >= cursor]
        self.pos = (later[0] if later else len(self.cursors)) - 1

    def _next(self):
        if self.pos + 1 >= len(self.cursors):
            return False
        self.pos += 1
        return True

    def test_cursor(self, cursor):
        return self.cursors[self.pos] == cursor


def test_a_kept_page_is_dropped_when_its_oldest_entry_is_gone_or_a_newer_one_came():
    cache = J.PageCache(max_entries=4)  # two pages of two
    q = J.LogQuery(n=2)
    key = cache.key("u.service", 1000, q, 100)
    page = J.LogPage("u.service", first_cursor="s=b", last_cursor="s=c", texts=["{}", "{}"])
    cache.put(key, page, "s=c")
    reader = _Reader(["s=a", "s=b", "s=c"])
    kept = cache.get(reader, key, q)
    assert kept is not None and kept is not page and kept.to_json_bytes() == page.to_json_bytes()
    reader.cursors.append("s=d")  # a newer entry for the unit: the tail page would change
    assert cache.get(reader, key, q) is None
    cache.put(key, page, "s=c")
    reader = _Reader(["s=c"])  # its oldest entry was vacuumed: read again
    assert cache.get(reader, key, q) is None
    # a before= page does not look at the tail; the text filter is part of the key, its compiled form is not
    qb = J.LogQuery(n=2, before="s=d", text="x", matcher=lambda m: True)
    assert cache.key("u.service", 1000, qb, 100) == cache.key(
        "u.service", 1000, J.LogQuery(n=2, before="s=d", text="x"), 100
    )
    assert cache.key("u.service", 1000, qb, 100) != cache.key(
        "u.service", 1000, J.LogQuery(n=2, before="s=d", text="y"), 100
    )
    cache.put(cache.key("u.service", 1000, qb, 100), page, "s=c")
    reader = _Reader(["s=a", "s=b", "s=c", "s=d", "s=e"])
    assert cache.get(reader, cache.key("u.service", 1000, qb, 100), qb) is not None
    # empty pages (their edge is the journal's tail) and a size of 0 keep nothing; the oldest page goes first
    cache.put(cache.key("v.service", 1000, q, 100), J.LogPage("v.service", last_cursor="s=z"), None)
    assert cache.get(reader, cache.key("v.service", 1000, q, 100), q) is None
    off = J.PageCache(max_entries=0)
    off.put(key, page, "s=c")
    assert off.get(_Reader(["s=b", "s=c"]), key, q) is None
    for name in ("x", "y", "z"):
        cache.put(cache.key(name, 1000, q, 100), page, "s=c")
    assert len(cache._pages) == 2 and cache.get(_Reader(["s=b", "s=c"]), cache.key("x", 1000, q, 100), q) is None


_text = st.text(st.characters(), max_size=40)
_entries = st.fixed_dictionaries(
    {
        "cursor": _text,
        "realtime": _text,
        "realtime_usec": st.integers(min_value=0, max_value=2**63 - 1),
        "priority": st.none() | st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() | st.floats(),
        "pid": st.none() | st.integers(min_value=0, max_value=2**40) | st.booleans(),
        "identifier": st.none() | _text,
        "source": st.sampled_from(["service", "manager", "journald"]) | _text,
        "message": _text,
    },
    optional={"escaped": st.just(True), "untrusted": st.just(True), "origin": st.none() | _text},
)


@settings(max_examples=300, deadline=None)
@given(_entries)
def test_an_entrys_json_text_is_json_dumps_byte_for_byte(entry):
    assert J.entry_json(entry) == json.dumps(entry)


def test_an_entrys_json_text_for_real_shaped_entries():
    e = J.read_entry(
        _FieldsReader({"MESSAGE": b'say "hi"\\ \x01 \xc3\xa9 \xf0\x9f\x99\x82', "PRIORITY": b"6", "_PID": b"42"}), "a"
    )
    assert "untrusted" in e and J.entry_json(e) == json.dumps(e)
    e = J.read_entry(_FieldsReader({"MESSAGE": b"plain", "_SYSTEMD_USER_UNIT": b"a", "SYSLOG_IDENTIFIER": b"sh"}), "a")
    assert set(e) == {"cursor", "realtime", "realtime_usec", "priority", "pid", "identifier", "source", "message"}
    assert J.entry_json(e) == json.dumps(e) and json.loads(J.entry_json(e)) == e
    reordered = dict(reversed(list(e.items())))  # not read_entry's order: json.dumps decides
    assert J.entry_json(reordered) == json.dumps(reordered)


class _FieldsReader:
    def __init__(self, fields):
        self.fields = fields

    def _get_all(self):
        return self.fields

    def _get_realtime(self):
        return 1_796_068_365_123_456

    def _get_cursor(self):
        return "s=1;i=2"
