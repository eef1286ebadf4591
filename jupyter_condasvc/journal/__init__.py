"""The journal of a user service, read with systemd-python: one module per job.

* :mod:`.query`: the query (priority, time, boot, text), the matches of a
  unit, the one cursor walk, entries as JSON-ready dicts;
* :mod:`.history`: paged history (:class:`~.history.LogPage`);
* :mod:`.follow`: live follow from the event loop (:class:`~.follow.FollowHub`);
* :mod:`.diagnosis`: what journald does with this user's logs (the facts the
  doctor's journal check words).

The service layer's entry points are :meth:`ServiceManager.logs` and
:meth:`ServiceManager.follow`.  The names below are re-exported for scripts,
benchmarks and tests that import them from here.
"""

from __future__ import annotations

from .diagnosis import JOURNAL_STATES, JournalFacts, journal_facts, journald_settings
from .follow import Follower, FollowHub, LogFollow, Tail, TooManyFollowers
from .history import ENTRY_CACHE, PAGE_CACHE, EntryCache, LogPage, PageCache, history_json, read_page
from .query import (
    MESSAGE_ID_DROPPED,
    PRIORITY_NAMES,
    LogQuery,
    add_unit_matches,
    as_int,
    as_str,
    check_cursor,
    entry_json,
    format_text,
    journal_module,
    open_reader,
    parse_boot,
    parse_priority,
    parse_time,
    read_entry,
    seek_cursor,
    tail_cursor,
    text_matcher,
    walk,
)

__all__ = [
    "ENTRY_CACHE",
    "JOURNAL_STATES",
    "MESSAGE_ID_DROPPED",
    "PAGE_CACHE",
    "PRIORITY_NAMES",
    "EntryCache",
    "FollowHub",
    "Follower",
    "JournalFacts",
    "LogFollow",
    "LogPage",
    "LogQuery",
    "PageCache",
    "Tail",
    "TooManyFollowers",
    "add_unit_matches",
    "as_int",
    "as_str",
    "check_cursor",
    "entry_json",
    "format_text",
    "history_json",
    "journal_facts",
    "journal_module",
    "journald_settings",
    "open_reader",
    "parse_boot",
    "parse_priority",
    "parse_time",
    "read_entry",
    "read_page",
    "seek_cursor",
    "tail_cursor",
    "text_matcher",
    "walk",
]
