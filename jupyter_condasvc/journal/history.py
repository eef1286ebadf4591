"""Paged history of a unit's journal: a page of entries before or after a cursor, filtered, oldest first.

Blocking (systemd-python reads files): the service layer runs it off the
event loop (:meth:`ServiceManager.logs`).  Entries already read are kept with
their JSON text (:class:`EntryCache`), so a page is mostly the journal walk;
a page asked for again while the journal has nothing new for it is served
whole (:class:`PageCache`), after two seeks that prove it unchanged.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InvalidSpec
from .query import (
    FOREIGN,
    JournalReader,
    LogEntry,
    LogQuery,
    entry_json,
    open_reader,
    read_entry,
    seek_cursor,
    tail_cursor,
    walk,
)


class EntryCache:
    """Entries already read, with their JSON text, by (unit, cursor): journal entries never change.

    A history page then costs the journal walk and one cursor per entry; reading
    the fields, building the dict and encoding it happen once per entry (see
    bench/stream_bench.py's history breakdown). Least recently used entries go
    first beyond ``max_entries``; 0 turns the cache off. Thread-safe: pages
    are read in worker threads.
    """

    def __init__(self, max_entries: int = 20000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Tuple[str, str], Tuple[LogEntry, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def entry(self, reader: JournalReader, unit: str) -> Tuple[LogEntry, str]:
        """The reader's current entry and its JSON text."""
        if self.max_entries <= 0:
            entry = read_entry(reader, unit)
            return entry, entry_json(entry)
        key = (unit, reader._get_cursor())
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit
        entry = read_entry(reader, unit)
        pair = (entry, entry_json(entry))
        with self._lock:
            self.misses += 1
            self._entries[key] = pair
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return pair

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: The history path's cache (CondaSvcApp.log_cache_entries sets its size).
ENTRY_CACHE = EntryCache()


@dataclass
class LogPage:
    """One page of a unit's journal: the wire's ``LogPage``.

    ``first_cursor`` / ``last_cursor`` are the edges of what was *scanned*
    (pass them as ``before=`` / ``after=`` for the next page, or
    ``last_cursor`` as the follow socket's ``cursor``); with no entry at all,
    ``last_cursor`` is the journal's tail, so a follow from it misses nothing.
    ``name`` and ``journal`` (the diagnosis) are the service layer's.
    """

    unit: str
    entries: List[LogEntry] = field(default_factory=list)
    first_cursor: Optional[str] = None
    last_cursor: Optional[str] = None
    more_before: bool = False
    more_after: bool = False
    scanned: int = 0
    scan_limited: bool = False
    name: Optional[str] = None
    journal: Optional[Dict[str, Any]] = None
    #: the entries' JSON texts (from the cache), in the same order: spliced into the body, not encoded again
    texts: List[str] = field(default_factory=list, repr=False)
    #: the encoded body, shared by the copies of a page the PageCache serves: ``last`` is (the rest it was
    #: last completed with, the whole body)
    _encoded: Dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("texts", "_encoded")}
        return {k: v for k, v in out.items() if v is not None or k not in ("name", "journal")}

    def to_json(self) -> str:
        return self.to_json_bytes().decode("utf-8")

    def to_json_bytes(self) -> bytes:
        """The page as UTF-8 JSON: the entries' texts spliced, not encoded again; a kept page's body is reused
        whole while the rest (name, cursors, the journal diagnosis) is the same."""
        rest = json.dumps({k: v for k, v in self.to_dict().items() if k != "entries"})[1:].encode()
        last = self._encoded.get("last")
        if last is not None and last[0] == rest:
            return last[1]
        body = ('{"entries": [' + ", ".join(self.texts) + "], ").encode() + rest
        self._encoded["last"] = (rest, body)
        return body


_PageKey = Tuple[str, int, Any, int]


class PageCache:
    """Whole pages already answered, by (unit, uid, query, max_scan), served again while provably unchanged.

    Entries never change and journald only appends (a new entry is always the
    newest), so a page can change in two ways only: an entry arrives after
    it, or the oldest entries it scanned are deleted (rotation, vacuum).  A
    page is therefore served again, not read again, when

    * its oldest scanned entry still exists (one seek and ``test_cursor``), and
    * unless nothing after it can belong to it (a ``before=`` page; an
      ``after=`` page already full), the newest entry the unit's matches see
      is still the one that was newest when the page was read (one seek to the
      tail, one step).

    A plain tail page (the newest n entries, no filter) whose unit logged
    since is grown instead of read again: the entries after its last one are
    appended and as many of its oldest dropped, which is what a new read
    would give, at the cost of the new entries only (a service that keeps
    logging, watched by a panel).

    Both checks cost a few microseconds on the reader the request opened
    anyway; anything else reads the page again (and refreshes the entry). A
    page whose edges are not the unit's own entries (an empty tail page ends
    at the journal's tail, which anything moves) is not kept.  Least recently
    used pages go first once the kept pages hold more than ``max_entries``
    entries (each ~0.3 KiB of encoded body besides the texts it shares with
    the entry cache); 0 turns the cache off.  Thread-safe: pages are read in
    worker threads.
    """

    def __init__(self, max_entries: int = 10000) -> None:
        self.max_entries = max_entries
        self._pages: OrderedDict[_PageKey, Tuple[LogPage, Optional[str]]] = OrderedDict()
        self._held = 0  # entries of the kept pages
        self._lock = threading.Lock()
        self.hits = self.misses = self.grown = 0

    @staticmethod
    def key(unit: str, uid: int, q: LogQuery, max_scan: int, ident: Optional[str] = None) -> _PageKey:
        # every field of the query but its compiled matcher (made from text and regex, which are in), and the
        # identifier that widens the unit's matches
        fields = tuple(getattr(q, f.name) for f in dataclasses.fields(q) if f.name != "matcher")
        return (unit, uid, (fields, ident), max_scan)

    def get(self, reader: JournalReader, key: _PageKey, q: LogQuery) -> Optional[LogPage]:
        """The page kept under ``key`` if still exact, or a kept tail page grown by the entries that came after
        it (a copy the caller may annotate); else None."""
        with self._lock:
            kept = self._pages.get(key)
        if kept is None:
            return None
        page, newest = kept
        if _still_there(reader, page.first_cursor):
            if not _tail_matters(page, q):
                return self._hit(key, page)
            now = newest_cursor(reader)
            if now == newest:
                return self._hit(key, page)
            if _growable(page, q, newest):
                grown = _grow(reader, key[0], page, q)
                if grown is not None:
                    self.put(key, grown, now, grown=True)
                    return dataclasses.replace(grown)
        with self._lock:
            if self._pages.get(key) is kept:
                del self._pages[key]
                self._held -= len(page.texts)
        return None

    def _hit(self, key: _PageKey, page: LogPage) -> LogPage:
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
            self.hits += 1
        return dataclasses.replace(page)

    def put(self, key: _PageKey, page: LogPage, newest: Optional[str], *, grown: bool = False) -> None:
        if page.first_cursor is None or page.last_cursor is None or len(page.texts) > self.max_entries:
            return
        with self._lock:
            if grown:
                self.grown += 1
            else:
                self.misses += 1
            old = self._pages.pop(key, None)
            if old is not None:
                self._held -= len(old[0].texts)
            self._pages[key] = (page, newest)
            self._held += len(page.texts)
            while self._held > self.max_entries:
                _, (gone, _) = self._pages.popitem(last=False)
                self._held -= len(gone.texts)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._held = 0


#: The history path's page cache (CondaSvcApp.log_page_cache_entries sets its size).
PAGE_CACHE = PageCache()


def newest_cursor(reader: JournalReader) -> Optional[str]:
    """The cursor of the newest entry the reader's matches see (moves the reader)."""
    reader.seek_tail()
    return reader._get_cursor() if reader._previous() else None


def _still_there(reader: JournalReader, cursor: Optional[str]) -> bool:
    """Whether the entry ``cursor`` names still exists (moves the reader)."""
    if cursor is None:
        return False
    try:
        seek_cursor(reader, cursor)
    except InvalidSpec:
        return False
    return bool(reader._next()) and bool(reader.test_cursor(cursor))


def _growable(page: LogPage, q: LogQuery, newest: Optional[str]) -> bool:
    """Whether the page is simply the unit's newest entries: the newest n then are the page's last ones and what
    came after it (no time bounds, no text filter, no cursor; it ended at the newest entry when it was read)."""
    return (
        q.before is None
        and q.after is None
        and q.since is None
        and q.until is None
        and q.matcher is None
        and not page.scan_limited
        and page.last_cursor is not None
        and page.last_cursor == newest
        and len(page.texts) == page.scanned
    )


def _grow(reader: JournalReader, unit: str, page: LogPage, q: LogQuery) -> Optional[LogPage]:
    """The page with the entries after its last one appended and as many of its oldest dropped (the same page a
    new read would give: journald only appends), or None when that is not cheaper (a whole page or more came)."""
    fresh: List[Tuple[LogEntry, str]] = []
    for usec in walk(reader, page.last_cursor):  # lands on the kept last entry and passes over it
        if usec is None:
            break
        if len(fresh) >= q.n:
            return None
        pair = ENTRY_CACHE.entry(reader, unit)
        if pair[0]["source"] != FOREIGN:
            fresh.append(pair)
    if not fresh:
        return None
    pairs = [*zip(page.entries, page.texts), *fresh]
    drop = max(0, len(pairs) - q.n)
    pairs = pairs[drop:]
    return LogPage(
        unit,
        entries=[entry for entry, _ in pairs],
        texts=[text for _, text in pairs],
        first_cursor=pairs[0][0]["cursor"],
        last_cursor=pairs[-1][0]["cursor"],
        more_before=page.more_before or drop > 0,
        scanned=len(pairs),
    )


def _tail_matters(page: LogPage, q: LogQuery) -> bool:
    """Whether an entry newer than any in the journal now could belong to this page."""
    if q.before is not None:
        return False
    return not (q.after is not None and page.more_after)


def _start(reader: JournalReader, q: LogQuery) -> Iterator[Optional[int]]:
    """The walk a page reads: after= forward from the later of the cursor and since; else backward from
    before=, until or the tail."""
    if q.after is not None:
        steps = walk(reader, q.after)
        if q.since is None:
            return steps
        first = next(steps)
        if first is not None and first < q.since:
            reader.seek_realtime(int(q.since))
            return walk(reader)
        return itertools.chain([first], steps)  # the reader stands on that first entry
    if q.before is not None:
        return walk(reader, q.before, backward=True)
    if q.until is not None:
        reader.seek_realtime(int(q.until))
    else:
        reader.seek_tail()
    return walk(reader, backward=True)


def read_page(unit: str, uid: int, q: LogQuery, *, max_scan: int = 200_000, ident: Optional[str] = None) -> LogPage:
    """A page of the unit's journal (blocking: run off the event loop).

    Without a cursor: the newest ``q.n`` entries (before ``until`` when given).
    ``before=C``: the ``n`` entries just before C; ``after=C``: the ``n`` just
    after.  Text filters read at most ``max_scan`` entries.  ``ident``: the unit's SyslogIdentifier, which
    finds its lines whose unit journald lost (:func:`~.query.add_unit_matches`).
    """
    reader = open_reader(unit, uid, priority=q.priority, boot=q.boot, ident=ident)
    try:
        if PAGE_CACHE.max_entries <= 0:
            return _read(reader, unit, q, max_scan)
        key = PAGE_CACHE.key(unit, uid, q, max_scan, ident)
        page = PAGE_CACHE.get(reader, key, q)
        if page is not None:
            return page
        # before the read: an entry that arrives meanwhile makes the kept page look stale, never fresh
        newest = newest_cursor(reader)
        page = _read(reader, unit, q, max_scan)
        PAGE_CACHE.put(key, page, newest)
        return dataclasses.replace(page)
    finally:
        reader.close()


def _read(reader: JournalReader, unit: str, q: LogQuery, max_scan: int) -> LogPage:
    forward = q.after is not None
    page = LogPage(unit)
    pairs: List[Tuple[LogEntry, str]] = []
    near = far = None  # the cursors scanned first and last, in the walk's direction
    more = False
    for usec in _start(reader, q):
        if usec is None:
            break
        if q.until is not None and usec > q.until:
            if forward:
                break
            continue
        if not forward and q.since is not None and usec < q.since:
            break
        if len(pairs) >= q.n:
            more = True
            break
        page.scanned += 1
        if page.scanned > max_scan:
            page.scan_limited = more = True
            break
        pair = ENTRY_CACHE.entry(reader, unit)
        far = pair[0]["cursor"]
        near = near or far
        if pair[0]["source"] != FOREIGN and (q.matcher is None or q.matcher(pair[0]["message"])):
            pairs.append(pair)
    if forward:
        page.first_cursor, page.last_cursor, page.more_after = near, far, more
    else:
        pairs.reverse()
        page.first_cursor, page.last_cursor, page.more_before = far, near, more
        if near is None and q.before is None and q.until is None:
            page.last_cursor = tail_cursor()
    page.entries = [entry for entry, _ in pairs]
    page.texts = [text for _, text in pairs]
    return page


def history_json(
    unit: str,
    uid: int,
    q: LogQuery,
    *,
    max_scan: int = 200_000,
    extra: Optional[Dict[str, Any]] = None,
    ident: Optional[str] = None,
) -> bytes:
    """:func:`read_page` as the server answers it (UTF-8 JSON), with ``extra`` keys (``name``, ``journal``)."""
    page = read_page(unit, uid, q, max_scan=max_scan, ident=ident)
    for key, value in (extra or {}).items():
        setattr(page, key, value)
    return page.to_json_bytes()
