"""The journal of a user service: history, live follow, and the truth about storage.

Read with systemd-python (``from systemd import journal``); no ``journalctl``
subprocess anywhere.  One job: turn journal entries of one *user* unit into
plain dicts, page through them, and follow new ones from the event loop.

Which entries belong to a unit (what ``journalctl --user -u UNIT`` shows):

* the service's own output: ``_SYSTEMD_USER_UNIT=UNIT`` and ``_UID=<uid>``;
* the user manager's messages about it ("Started ...", "Failed with result
  ..."): ``USER_UNIT=UNIT`` and ``_UID=<uid>``;
* journald's rate-limit notes, as *markers*: journald counts every service of
  a user under one key, ``user@UID.service``, and writes
  ``MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e``, ``N_DROPPED=<n>``,
  ``OBJECT_SYSTEMD_UNIT=user@UID.service`` ("Suppressed N messages from
  user@UID.service") to the *system* journal, once the next message after the
  rate-limit window arrives.  A user sees them only when they may read the
  system journal (group ``systemd-journal``); :func:`diagnose` says so.

An entry (JSON)::

    {"cursor": "s=...;i=...", "realtime": "2026-11-27T03:07:38.123456+00:00",
     "realtime_usec": 1795748858123456, "priority": 6, "pid": 4242,
     "identifier": "python", "source": "service" | "manager" | "journald",
     "message": "text",
     "escaped": true,                       # only when MESSAGE was not UTF-8:
                                            # invalid bytes appear as \\xNN
     "marker": {"kind": "suppressed", "count": 2521,
                "scope": "user@1001.service"}}   # only on rate-limit markers

Following: :class:`FollowHub` keeps one :class:`Follower` (one ``Reader``)
per WebSocket client.  Each reader's inotify descriptor is watched with
``loop.add_reader`` (journald wakes inotify readers only every 250 ms), and one
shared short timer (``interval``, 10 ms by default) reads every follower's
new entries; the timer runs only while at least one follower exists.  Work per
tick is bounded by a time budget, so a service logging at journald's maximum
rate never blocks the loop for long.  When journal files are rotated or
journald restarts (``process()`` answers ``INVALIDATE``, or reading fails),
the follower re-opens and seeks to its last cursor: no gap, no duplicate.
"""
from __future__ import annotations

import asyncio
import json
import os
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import CondaSvcError, InvalidSpec

#: journald's "Suppressed N messages from UNIT" (SD_MESSAGE_JOURNAL_DROPPED).
MESSAGE_ID_DROPPED = "a596d6fe7bfa4994828e72309e95d61e"
PRIORITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_PRIORITY_ALIASES = {"emergency": 0, "panic": 0, "critical": 2, "error": 3, "warn": 4, "information": 6}
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)


# -- parsing query parameters -------------------------------------------------
def parse_priority(value: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"err"``, ``"3"`` (that level and more severe) or ``"crit..warning"``."""
    if value is None or value == "":
        return None

    def one(text: str) -> int:
        text = text.strip().lower()
        if text.isascii() and text.isdigit() and 0 <= int(text) <= 7:
            return int(text)
        if text in PRIORITY_NAMES:
            return PRIORITY_NAMES.index(text)
        if text in _PRIORITY_ALIASES:
            return _PRIORITY_ALIASES[text]
        raise InvalidSpec(
            f"Unknown priority '{text}': use 0..7 or one of {', '.join(PRIORITY_NAMES)} (or a range like err..warning).",
            field="priority",
        )

    if ".." in value:
        lo, hi = value.split("..", 1)
        a, b = one(lo), one(hi)
        return (min(a, b), max(a, b))
    return (0, one(value))


def parse_time(value: Optional[str], field_name: str) -> Optional[int]:
    """ISO 8601 (no offset means UTC), seconds since the epoch, or relative ``-90s``/``-5m``/``-2h``/``-1d``: usec."""
    if value is None or value == "":
        return None
    text = value.strip()
    usec: Optional[int] = None
    m = re.fullmatch(r"-(\d+(?:\.\d+)?)\s*([smhd])", text)
    if m:
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        usec = _finite_usec(time.time() - seconds)
    if usec is None and not m:
        try:
            usec = _finite_usec(float(text))
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise InvalidSpec(
                    f"'{value}' is not a time: use ISO 8601 (2026-01-31T12:00:00+00:00), seconds since the epoch, or -5m/-2h/-1d.",
                    field=field_name,
                ) from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=_UTC)
            usec = (dt - _EPOCH) // timedelta(microseconds=1)
    # inf, nan, 1e300, the year 1: not a time the journal can hold (64-bit microseconds since 1970)
    if usec is None or not 0 <= usec < 2**63:
        raise InvalidSpec(f"'{value}' is not a time between 1970 and the year 2262.", field=field_name)
    return usec


def _finite_usec(seconds: float) -> Optional[int]:
    """Seconds as microseconds, or None for inf/nan/out of range."""
    if not math.isfinite(seconds) or abs(seconds) > 2**63 / 1_000_000:
        return None
    return int(seconds * 1_000_000)


def current_boot_id() -> str:
    try:
        return _BOOT_ID_FILE.read_text().strip().replace("-", "")
    except OSError:
        return ""


def parse_boot(value: Optional[str]) -> Optional[str]:
    """``this`` (the current boot), ``all`` / empty (every boot) or a 32-hex boot id."""
    if value is None or value in ("", "all"):
        return None
    if value in ("this", "0", "current"):
        return current_boot_id() or None
    text = value.replace("-", "").lower()
    if re.fullmatch(r"[0-9a-f]{32}", text):
        return text
    raise InvalidSpec(f"Unknown boot '{value}': use 'this', 'all' or a 32-hex boot id.", field="boot")


#: Longest ``text`` filter accepted; RE2 also caps the memory one pattern may use.
MAX_TEXT_FILTER = 1000
_RE2_MAX_MEM = 8 << 20


def text_matcher(text: Optional[str], regex: bool = False) -> Optional[Callable[[str], bool]]:
    """Substring (or, with ``regex``, an RE2 regular expression); smart case like ``journalctl --grep``:
    case-insensitive unless the pattern has an upper-case letter.

    RE2 matches in time linear in the line, whatever the pattern: a pattern
    such as ``(A+)+B`` that makes a backtracking engine take exponential time
    cannot stall the event loop.  RE2 has no backreferences or look-around;
    such a pattern is refused (400) rather than run on a slower engine.
    """
    if not text:
        return None
    if len(text) > MAX_TEXT_FILTER:
        raise InvalidSpec(f"text must be at most {MAX_TEXT_FILTER} characters, not {len(text)}.", field="text")
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    options.case_sensitive = any(c.isupper() for c in text)
    options.literal = not regex
    try:
        pattern = re2.compile(text, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidSpec(
            f"The regular expression '{text}' is not supported: {reason}. Patterns use RE2 syntax "
            "(no backreferences or look-around).",
            field="text",
        ) from None
    search = pattern.search
    return lambda message: search(message) is not None


@dataclass
class LogQuery:
    """A validated history/follow query."""

    n: int = 100
    before: Optional[str] = None
    after: Optional[str] = None
    priority: Optional[Tuple[int, int]] = None
    since: Optional[int] = None  # usec
    until: Optional[int] = None  # usec
    boot: Optional[str] = None
    text: Optional[str] = None
    regex: bool = False
    matcher: Optional[Callable[[str], bool]] = field(default=None, repr=False)

    @classmethod
    def parse(cls, get: Callable[[str], Optional[str]], *, max_n: int = 10000, default_n: int = 100) -> "LogQuery":
        """Build from query arguments (``get(name)`` returns the value or None)."""
        raw_n = get("n") or get("lines")
        try:
            n = default_n if raw_n in (None, "") else int(raw_n)
        except ValueError:
            raise InvalidSpec(f"n must be a whole number, not '{raw_n}'.", field="n") from None
        if n < 0 or n > max_n:
            raise InvalidSpec(f"n must be between 0 and {max_n}.", field="n")
        before, after = get("before") or None, get("after") or None
        if before and after:
            raise InvalidSpec("Give before= or after=, not both.", field="before")
        regex = (get("regex") or "").lower() in ("1", "true", "yes")
        text = get("text") or None
        q = cls(
            n=n, before=before, after=after, priority=parse_priority(get("priority")),
            since=parse_time(get("since"), "since"), until=parse_time(get("until"), "until"),
            boot=parse_boot(get("boot")), text=text, regex=regex, matcher=text_matcher(text, regex),
        )
        if q.since is not None and q.until is not None and q.since > q.until:
            raise InvalidSpec("since is later than until.", field="since")
        return q


# -- reading -------------------------------------------------------------------
def _journal_module() -> Any:
    from systemd import journal

    return journal


def open_reader(unit: str, uid: int, *, priority: Optional[Tuple[int, int]] = None, boot: Optional[str] = None) -> Any:
    """A ``journal.Reader`` matching the unit's entries and the rate-limit markers of its user."""
    journal = _journal_module()
    reader = journal.Reader(flags=journal.LOCAL_ONLY)
    try:
        add_unit_matches(reader, unit, uid, priority=priority, boot=boot)
    except BaseException:
        reader.close()
        raise
    return reader


def add_unit_matches(reader: Any, unit: str, uid: int, *, priority: Optional[Tuple[int, int]] = None, boot: Optional[str] = None) -> None:
    extra: List[str] = []
    if priority is not None:
        extra += [f"PRIORITY={p}" for p in range(priority[0], priority[1] + 1)]
    if boot:
        extra.append(f"_BOOT_ID={boot}")
    for key in ("_SYSTEMD_USER_UNIT", "USER_UNIT"):
        reader.add_match(f"{key}={unit}", f"_UID={uid}", *extra)
        reader.add_disjunction()
    # _UID=0: written by journald itself; a service printing the same fields cannot fake a marker
    marker = [f"MESSAGE_ID={MESSAGE_ID_DROPPED}", f"OBJECT_SYSTEMD_UNIT=user@{uid}.service", "_UID=0"]
    if boot:
        marker.append(f"_BOOT_ID={boot}")
    reader.add_match(*marker)


def usec_to_iso(usec: int) -> str:
    return (_EPOCH + timedelta(microseconds=usec)).isoformat(timespec="microseconds")


_iso_second: List[Any] = [None, ""]


def _iso(usec: int) -> str:
    """``usec_to_iso``, fast: consecutive entries mostly share their second."""
    sec, frac = divmod(usec, 1_000_000)
    if _iso_second[0] != sec:
        _iso_second[0] = sec
        _iso_second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_iso_second[1]}.{frac:06d}+00:00"


_iso_pair: List[Tuple[int, str]] = [(-1, "")]


def read_entry(reader: Any, unit: str) -> Dict[str, Any]:
    """The entry the reader is positioned on, as a JSON-ready dict (never raises on odd data).

    One ``_get_all()`` walk of the entry's items: cheaper than a ``_get``
    per field, since each ``_get`` walks the items again and MESSAGE, the
    newest data object, always comes last.  Written for speed: this runs
    1000 times for one page of history.
    """
    fields = reader._get_all()
    get = fields.get
    raw = get("MESSAGE", b"")
    escaped = False
    if raw.__class__ is bytes:
        try:
            message = raw.decode("utf-8")
        except UnicodeDecodeError:
            message = raw.decode("utf-8", "backslashreplace")
            escaped = True
    else:  # a repeated field (a list), or a build that already converted
        message = _as_str(raw) or ""
    usec = reader._get_realtime()
    sec, frac = divmod(usec, 1_000_000)
    # one (second, text) pair swapped whole: history pages are read by several threads at once
    cached_second = _iso_pair[0]
    if cached_second[0] != sec:
        cached_second = _iso_pair[0] = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    prio = get("PRIORITY")
    pid = get("_PID")
    ident = get("SYSLOG_IDENTIFIER")
    entry: Dict[str, Any] = {
        "cursor": reader._get_cursor(),
        "realtime": f"{cached_second[1]}.{frac:06d}+00:00",
        "realtime_usec": usec,
        "priority": int(prio) if prio.__class__ is bytes and prio.isdigit() else _as_int(prio),
        "pid": int(pid) if pid.__class__ is bytes and pid.isdigit() else _as_int(pid),
        "identifier": ident.decode("utf-8", "backslashreplace") if ident.__class__ is bytes else _as_str(ident),
        "source": "service",
        "message": message,
    }
    if escaped:
        entry["escaped"] = True
    sender = _first(get("_SYSTEMD_USER_UNIT"))
    if sender != unit.encode():
        # Classified by the fields journald itself records (trusted: a process cannot set them), never by
        # USER_UNIT or MESSAGE_ID, which any process of the user can send: journal.send(USER_UNIT="x.service").
        transport = _first(get("_TRANSPORT"))
        if _as_str(get("MESSAGE_ID")) == MESSAGE_ID_DROPPED and _first(get("_UID")) == b"0" and transport == b"driver":
            count = _as_int(get("N_DROPPED")) or 0
            scope = _as_str(get("OBJECT_SYSTEMD_UNIT")) or ""
            entry["source"] = "journald"
            entry["marker"] = {"kind": "suppressed", "count": count, "scope": scope}
            entry["message"] = (
                f"journald suppressed {count} messages from {scope} "
                "(its rate limit counts all of this user's services together; some may be from this service)"
            )
        elif sender == b"init.scope" and transport == b"journal":
            entry["source"] = "manager"  # the user manager itself: its cgroup is the user tree's init.scope
        else:
            # another process (another service, a shell) wrote about this unit: shown, but marked
            entry["untrusted"] = True
            entry["origin"] = _as_str(sender) or _as_str(get("_COMM"))
    return entry


def _first(value: Any) -> Any:
    """A field that occurs more than once comes back as a list: take the first."""
    return value[0] if isinstance(value, list) and value else value


def _as_int(value: Any) -> Optional[int]:
    value = _first(value)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_str(value: Any) -> Optional[str]:
    value = _first(value)
    if value is None:
        return None
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


_CURSOR = re.compile(r"[sibmtx]=[0-9a-f]+(;[sibmtx]=[0-9a-f]+)*;?")


def check_cursor(cursor: str) -> str:
    """A cursor as sd-journal writes them (``s=..;i=..;b=..;m=..;t=..;x=..``), or InvalidSpec."""
    if not _CURSOR.fullmatch(cursor or ""):
        raise InvalidSpec(f"'{cursor}' is not a journal cursor.", field="cursor")
    return cursor


def _seek_cursor(reader: Any, cursor: str) -> None:
    check_cursor(cursor)
    try:
        reader.seek_cursor(cursor)
    except (OSError, ValueError):
        raise InvalidSpec(f"'{cursor}' is not a journal cursor.", field="cursor") from None


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
        self._entries: "OrderedDict[Tuple[str, str], Tuple[Dict[str, Any], str]]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def entry(self, reader: Any, unit: str) -> Tuple[Dict[str, Any], str]:
        """The reader's current entry and its JSON text."""
        if self.max_entries <= 0:
            entry = read_entry(reader, unit)
            return entry, json.dumps(entry)
        key = (unit, reader._get_cursor())
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit
        entry = read_entry(reader, unit)
        pair = (entry, json.dumps(entry))
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


def _history(unit: str, uid: int, q: LogQuery, *, max_scan: int = 200_000) -> Dict[str, Any]:
    """A page of the unit's journal, its entries as (dict, JSON text) pairs: see history()."""
    reader = open_reader(unit, uid, priority=q.priority, boot=q.boot)
    try:
        forward = q.after is not None
        entries: List[Dict[str, Any]] = []
        scanned = 0
        first_cursor = last_cursor = None
        more_before = more_after = False
        limited = False
        if forward:
            _seek_cursor(reader, q.after)  # type: ignore[arg-type]
            skip: Optional[str] = q.after
            if q.since is not None:
                # start at the later of the cursor and since
                probe = reader._next()
                if probe and reader._get_realtime() < q.since:
                    reader.seek_realtime(int(q.since))
                    skip = None
                else:
                    _seek_cursor(reader, q.after)  # type: ignore[arg-type]
            while True:
                if not reader._next():
                    break
                if skip is not None:
                    s, skip = skip, None
                    if reader.test_cursor(s):
                        continue
                usec = reader._get_realtime()
                if q.until is not None and usec > q.until:
                    break
                if len(entries) >= q.n:
                    more_after = True
                    break
                scanned += 1
                if scanned > max_scan:
                    limited = more_after = True
                    break
                pair = ENTRY_CACHE.entry(reader, unit)
                entry = pair[0]
                if first_cursor is None:
                    first_cursor = entry["cursor"]
                last_cursor = entry["cursor"]
                if q.matcher is None or q.matcher(entry["message"]):
                    entries.append(pair)
        else:
            skip = None
            if q.before is not None:
                _seek_cursor(reader, q.before)
                skip = q.before
            elif q.until is not None:
                reader.seek_realtime(int(q.until))
            else:
                reader.seek_tail()
            while True:
                if not reader._previous():
                    break
                if skip is not None:
                    s, skip = skip, None
                    if reader.test_cursor(s):
                        continue
                usec = reader._get_realtime()
                if q.until is not None and usec > q.until:
                    continue
                if q.since is not None and usec < q.since:
                    break
                if len(entries) >= q.n:
                    more_before = True
                    break
                scanned += 1
                if scanned > max_scan:
                    limited = more_before = True
                    break
                pair = ENTRY_CACHE.entry(reader, unit)
                entry = pair[0]
                if last_cursor is None:
                    last_cursor = entry["cursor"]
                first_cursor = entry["cursor"]
                if q.matcher is None or q.matcher(entry["message"]):
                    entries.append(pair)
            entries.reverse()
        if last_cursor is None and not forward and q.before is None and q.until is None:
            last_cursor = tail_cursor()
        return {
            "unit": unit,
            "entries": entries,
            "first_cursor": first_cursor,
            "last_cursor": last_cursor,
            "more_before": more_before,
            "more_after": more_after,
            "scanned": scanned,
            "scan_limited": limited,
        }
    finally:
        reader.close()


def history(unit: str, uid: int, q: LogQuery, *, max_scan: int = 200_000) -> Dict[str, Any]:
    """A page of the unit's journal (blocking: run off the event loop).

    Without a cursor: the newest ``q.n`` entries (before ``until`` when given).
    ``before=C``: the ``n`` entries just before C; ``after=C``: the ``n`` just
    after.  Entries are oldest first.  ``first_cursor`` / ``last_cursor`` are
    the edges of what was *scanned* (pass them as ``before=`` / ``after=`` for
    the next page, or ``last_cursor`` as the follow socket's ``cursor``); with
    no entry at all, ``last_cursor`` is the journal's tail, so a follow from it
    misses nothing.
    """
    page = _history(unit, uid, q, max_scan=max_scan)
    page["entries"] = [entry for entry, _ in page["entries"]]
    return page


def history_json(unit: str, uid: int, q: LogQuery, *, max_scan: int = 200_000, extra: Optional[Dict[str, Any]] = None) -> str:
    """history() as JSON text, with ``extra`` keys: the entries' cached texts spliced in, not encoded again."""
    page = _history(unit, uid, q, max_scan=max_scan)
    texts = [text for _, text in page.pop("entries")]
    page.update(extra or {})
    return '{"entries": [' + ", ".join(texts) + "], " + json.dumps(page)[1:]


def tail_cursor() -> Optional[str]:
    """The cursor of the newest entry this user can read (any unit)."""
    journal = _journal_module()
    reader = journal.Reader(flags=journal.LOCAL_ONLY)
    try:
        reader.seek_tail()
        if reader._previous():
            return reader._get_cursor()
        return None
    finally:
        reader.close()


#: Terminal escape sequences (CSI such as colours, OSC such as titles and links, two-byte escapes).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def format_text(entries: Iterable[Dict[str, Any]]) -> str:
    """Like ``journalctl -o short-iso-precise``: one line per entry, without terminal escape sequences."""
    lines = []
    for e in entries:
        ident = e.get("identifier") or "-"
        pid = f"[{e['pid']}]" if e.get("pid") else ""
        message = _ESCAPES.sub("", e["message"]).replace("\n", "\n    ")
        lines.append(f"{e['realtime']} {ident}{pid}: {message}")
    return "\n".join(lines) + ("\n" if lines else "")


# -- the truth about storage -------------------------------------------------
JOURNALD_CONF = Path("/etc/systemd/journald.conf")
JOURNALD_CONF_DIRS = (Path("/etc/systemd/journald.conf.d"), Path("/run/systemd/journald.conf.d"), Path("/usr/lib/systemd/journald.conf.d"))


def journald_settings(conf: Path = JOURNALD_CONF, conf_dirs: Sequence[Path] = JOURNALD_CONF_DIRS) -> Dict[str, str]:
    """The [Journal] settings from journald.conf and its drop-ins (later files win)."""
    files = [conf]
    dropins: Dict[str, Path] = {}
    for d in reversed(list(conf_dirs)):  # /etc overrides /run overrides /usr/lib, by file name
        try:
            for p in d.glob("*.conf"):
                dropins[p.name] = p
        except OSError:
            continue
    files += [dropins[k] for k in sorted(dropins)]
    out: Dict[str, str] = {}
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        section = None
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Journal" and "=" in line:
                key, value = line.split("=", 1)
                out[key.strip()] = value.strip()
    return out


def _exists(path: Path) -> bool:
    try:
        path.stat()
        return True
    except PermissionError:
        return True
    except OSError:
        return False


#: What a user sees in each journal state, keyed by the diagnosis' ``state``.
JOURNAL_STATES = ("ok", "no-logs-yet", "runtime-journal", "not-flushed", "volatile", "storage-none", "split-none",
                  "unreadable")


def diagnose(
    uid: Optional[int] = None,
    *,
    persistent_root: Path = Path("/var/log/journal"),
    runtime_root: Path = Path("/run/log/journal"),
    machine_id_file: Path = Path("/etc/machine-id"),
    conf: Path = JOURNALD_CONF,
    conf_dirs: Sequence[Path] = JOURNALD_CONF_DIRS,
    flushed_flag: Path = Path("/run/systemd/journal/flushed"),
) -> Dict[str, Any]:
    """Can this user read their services' logs, and see journald's rate-limit notes?

    Looks only at files a user may stat (paths injectable for tests): journald's
    storage mode, whether it still writes its volatile runtime journal, whether
    ``user-UID.journal`` exists and is readable, whether the system journal
    (where "Suppressed N messages" notes go) is readable.  Returns ``{"ok",
    "state", "message", "path", "storage", "user_journal",
    "user_journal_readable", "system_journal_readable", "rate_limit",
    "problems": [{"code", "message", "fix"}], "fix"}``.  ``state`` is one of
    :data:`JOURNAL_STATES`; ``ok`` is False only when logs cannot be read
    ("no-logs-yet", a fresh install whose services have not logged, is fine).
    This is the one place that words the journal's problems: doctor, ``GET
    host``, the logs API and Lab's banners all show these texts.
    """
    uid = os.getuid() if uid is None else uid
    settings = journald_settings(conf, conf_dirs)
    storage_setting = settings.get("Storage", "auto").lower()
    split = settings.get("SplitMode", "uid").lower()
    try:
        machine_id = machine_id_file.read_text().strip()
    except OSError:
        machine_id = ""
    pdir = persistent_root / machine_id if machine_id else persistent_root
    rdir = runtime_root / machine_id if machine_id else runtime_root
    if storage_setting == "none":
        storage = "none"
    elif storage_setting == "volatile" or (storage_setting == "auto" and not persistent_root.is_dir()):
        storage = "volatile"
    else:
        storage = "persistent" if pdir.is_dir() or storage_setting == "persistent" else "volatile"
    user_file = pdir / f"user-{uid}.journal"
    user_exists = _exists(user_file)
    user_readable = user_exists and os.access(user_file, os.R_OK)
    system_readable = any(os.access(p, os.R_OK) for p in (pdir / "system.journal", rdir / "system.journal"))
    # After its flush to /var, journald removes its runtime folder; while the folder exists next to persistent
    # storage, journald still writes the runtime journal (not flushed yet, or stuck: fact 3a of the stack notes).
    on_runtime = storage == "persistent" and pdir.is_dir() and _exists(rdir)
    problems: List[Dict[str, str]] = []
    fix_persistent = (
        "Make journald's storage persistent: `sudo mkdir -p /var/log/journal && sudo systemd-tmpfiles --create "
        "--prefix /var/log/journal && sudo journalctl --flush` (or set Storage=persistent in /etc/systemd/journald.conf "
        "and restart systemd-journald)."
    )
    if storage == "none":
        problems.append({
            "code": "storage-none",
            "message": "journald is configured with Storage=none: it stores no logs at all, so services' output is lost.",
            "fix": "Set Storage=persistent in /etc/systemd/journald.conf and restart systemd-journald.",
        })
    elif storage == "volatile":
        problems.append({
            "code": "volatile",
            "message": (
                f"journald keeps logs only in memory ({runtime_root}) because persistent storage ({persistent_root}) "
                "is missing; there everything goes into one system file a user cannot read, so your services' logs "
                "are not readable and are lost at reboot."
            ),
            "fix": fix_persistent,
        })
    elif on_runtime and _exists(flushed_flag):
        problems.append({
            "code": "runtime-journal",
            "message": (
                f"journald is writing its volatile runtime journal ({rdir}) although persistent storage ({pdir}) "
                f"exists: after flushing it could not remove {rdir}, which happens where /run is not a tmpfs, so it "
                f"went on writing there and never writes your file {user_file}. Your services' logs are not readable."
            ),
            "fix": (
                f"As root, repair the running journald: `rm {rdir}/*.journal {flushed_flag} && journalctl --flush`; "
                f"and for the next boot give {runtime_root} a tmpfs before journald starts "
                f"(`mount -t tmpfs -o mode=0755 tmpfs {runtime_root}`), as a host booted with systemd has."
            ),
        })
    elif on_runtime:
        problems.append({
            "code": "not-flushed",
            "message": (
                f"journald has not flushed its runtime journal ({rdir}) to persistent storage ({pdir}) yet, so it "
                f"does not write your file {user_file}. Your services' logs are not readable until it does."
            ),
            "fix": "Flush the journal to disk: `sudo journalctl --flush` (systemd-journal-flush.service does this at boot).",
        })
    elif split == "none" and not system_readable:
        problems.append({
            "code": "split-none",
            "message": "journald is configured with SplitMode=none: everything goes to the system journal, which you cannot read.",
            "fix": "Remove SplitMode=none from journald.conf (the default, uid, gives each user a readable file), "
                   "or add yourself to the systemd-journal group: `sudo usermod -aG systemd-journal $USER`.",
        })
    elif user_exists and not user_readable and not system_readable:
        problems.append({
            "code": "unreadable",
            "message": f"Your journal file {user_file} exists but you cannot read it, so your services' logs are not readable.",
            "fix": f"journald grants each user read access to their own file with an ACL; restore it with "
                   f"`sudo setfacl -m u:{uid}:r {user_file}` (or add yourself to the systemd-journal group).",
        })
    notes: List[str] = []
    if not system_readable:
        notes.append(
            "journald's notes about rate-limited (suppressed) messages go to the system journal, which you cannot read; "
            "add yourself to the systemd-journal group to see them as markers in the log."
        )
    if problems:
        state, message, path = problems[0]["code"], problems[0]["message"], str(rdir if on_runtime else user_file)
    elif not user_exists and not system_readable:
        state, path = "no-logs-yet", str(user_file)
        message = f"No logs yet: journald writes {user_file} when one of your services first logs a line."
    else:
        state, message, path = "ok", f"Your services' logs are in {user_file}.", str(user_file)
    interval = settings.get("RateLimitIntervalSec", "30s")
    burst = settings.get("RateLimitBurst", "10000")
    return {
        "ok": not problems,
        "state": state,
        "message": message,
        "path": path,
        "storage": storage,
        "user_journal": str(user_file),
        "user_journal_readable": user_readable,
        "system_journal_readable": system_readable,
        "rate_limit": {
            "interval": interval,
            "burst": burst,
            "scope": f"user@{uid}.service",
            "markers_visible": system_readable,
            "note": (
                f"journald rate-limits all of your services together (as user@{uid}.service): at most {burst} messages "
                f"per {interval} (scaled up with free disk space), then it drops lines until the interval ends."
            ),
        },
        "problems": problems,
        "notes": notes,
        "fix": problems[0]["fix"] if problems else None,
    }


_diag_cache: Tuple[float, Optional[Dict[str, Any]]] = (0.0, None)


def diagnose_cached(ttl: float = 10.0) -> Dict[str, Any]:
    """:func:`diagnose`, re-checked at most every ``ttl`` seconds."""
    global _diag_cache
    now = time.monotonic()
    at, value = _diag_cache
    if value is None or now - at > ttl:
        value = diagnose()
        _diag_cache = (now, value)
    return value


# -- following ------------------------------------------------------------------
class Follower:
    """One client's live view of one unit: a Reader, a cursor, a bounded send queue.

    ``send(text) -> Optional[Future]`` writes one message to the client (a
    WebSocket ``write_message``); the follower counts the bytes not yet
    flushed and, past ``max_pending`` bytes, drops entries and later tells the
    client how many (and between which cursors, so it can page them in).
    """

    def __init__(
        self, hub: "FollowHub", unit: str, uid: int, send: Callable[[str], Any], *,
        cursor: Optional[str] = None, backlog: int = 0, priority: Optional[Tuple[int, int]] = None,
        matcher: Optional[Callable[[str], bool]] = None, boot: Optional[str] = None,
    ) -> None:
        self.hub = hub
        self.unit = unit
        self.uid = uid
        self.send = send
        self.priority = priority
        self.matcher = matcher
        self.boot = boot
        self.cursor: Optional[str] = None
        self._skip: Optional[str] = None
        self.pending_bytes = 0
        self.dropped = 0
        self._dropped_after: Optional[str] = None
        self._dropped_until: Optional[str] = None
        self.delivered = 0
        self.reopened = 0
        self.closed = False
        self.reader: Any = None
        self._open()
        if cursor:
            _seek_cursor(self.reader, cursor)
            self.cursor = self._skip = cursor
        else:
            self._position_tail(backlog)

    # -- reader life cycle --
    def _open(self) -> None:
        # No fileno() here: that would give every follower its own inotify instance, and a user has
        # only 128 (fs.inotify.max_user_instances) for all their programs.  The hub's one watch tells
        # every follower when journal files come and go; appended entries are seen by reading.
        self.reader = open_reader(self.unit, self.uid, priority=self.priority, boot=self.boot)

    def _position_tail(self, backlog: int) -> None:
        r = self.reader
        r.seek_tail()
        moved = 0
        start = None
        while moved <= backlog and r._previous():
            moved += 1
            start = r._get_cursor()
        if moved > backlog and start is not None:
            # positioned on the entry just before the backlog: start after it
            self.cursor = self._skip = start
            r.seek_cursor(start)
        else:
            # fewer entries than asked for: everything, from the head
            r.seek_head()
            if moved == 0:
                # nothing of this unit yet: remember the global tail so a reopen resumes right there
                self.cursor = tail_cursor()
                if self.cursor:
                    r.seek_cursor(self.cursor)
                    self._skip = self.cursor

    def reopen(self) -> None:
        """After rotation or a journald restart: a fresh Reader at the last cursor."""
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001
            pass
        self._open()
        self.reopened += 1
        if self.cursor:
            try:
                self.reader.seek_cursor(self.cursor)
                self._skip = self.cursor
            except OSError:
                self.reader.seek_head()
        else:
            self.reader.seek_head()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001
            pass

    # -- reading --
    def drain(self, deadline: float, max_batch: int) -> bool:
        """Read new entries until none are left or ``deadline``; send them as one message.

        Returns True when entries may remain (the budget ran out).
        """
        if self.closed:
            return False
        r = self.reader
        batch: List[Dict[str, Any]] = []
        more = False
        unit = self.unit
        matcher = self.matcher
        clock = time.monotonic
        try:
            while True:
                if not r._next():
                    break
                if self._skip is not None:
                    s, self._skip = self._skip, None
                    if r.test_cursor(s):
                        continue
                entry = read_entry(r, unit)
                self.cursor = entry["cursor"]
                if matcher is None or matcher(entry["message"]) or "marker" in entry:
                    batch.append(entry)
                if len(batch) >= max_batch or clock() > deadline:
                    more = True
                    break
        except OSError:
            # a journal file vanished under us (vacuum, journald restart): start over at the cursor
            self.reopen()
            more = True
        if batch:
            self._deliver(batch)
        return more

    def _deliver(self, batch: List[Dict[str, Any]]) -> None:
        if self.pending_bytes > self.hub.max_pending:
            if not self.dropped:
                self._dropped_after = self._last_sent
            self.dropped += len(batch)
            self._dropped_until = batch[-1]["cursor"]
            return
        if self.dropped:
            self._report_dropped()
        self.delivered += len(batch)
        self._write({"type": "entries", "entries": batch, "cursor": batch[-1]["cursor"]})

    _last_sent: Optional[str] = None

    def _report_dropped(self) -> None:
        count, self.dropped = self.dropped, 0
        self.hub.total_dropped += count
        self._write({
            "type": "dropped", "count": count, "after": self._dropped_after, "until": self._dropped_until,
            "message": f"{count} log entries were not sent because this client could not keep up; "
                       "fetch them from the history (after= the first cursor, up to and including the second).",
        })

    def _write(self, message: Dict[str, Any]) -> None:
        text = json.dumps(message)
        size = len(text)
        try:
            fut = self.send(text)
        except Exception:  # noqa: BLE001 - a closed socket: the handler's on_close removes us
            self.hub.remove(self)
            return
        if message.get("type") == "entries":
            self._last_sent = message["cursor"]
        if fut is not None and not fut.done():
            self.pending_bytes += size

            def done(_f: Any, size: int = size) -> None:
                self.pending_bytes -= size
                try:
                    _f.exception()
                except BaseException:  # noqa: BLE001 - closed sockets are handled by on_close
                    pass
                if self.dropped and not self.closed and self.pending_bytes <= self.hub.max_pending // 2:
                    self._report_dropped()  # caught up: say what was lost now, not at the next line

            fut.add_done_callback(done)


class TooManyFollowers(CondaSvcError):
    """The server already follows ``max_followers`` logs."""

    status = 503


class FollowHub:
    """Every follower of this server, driven from the event loop.

    ONE journal watch for the whole server (a Reader whose inotify fd is
    watched with ``loop.add_reader``), whatever the number of followers: it
    tells every follower when journal files are added, rotated or removed, and
    they reopen at their cursor.  One timer of ``interval`` seconds reads all
    followers, and exists only while there is at least one.  No threads, no
    subprocesses, and at most ``max_followers`` followers.
    """

    def __init__(self, *, interval: float = 0.01, budget: float = 0.003, max_batch: int = 250,
                 max_pending: int = 4 * 1024 * 1024, max_followers: int = 64, log: Any = None) -> None:
        self.interval = interval
        self.budget = budget
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.max_followers = max_followers
        self.log = log
        self.followers: List[Follower] = []
        #: the one Reader whose inotify instance watches the journal directories for all followers
        self.watch: Any = None
        self.watch_fd: Optional[int] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.total_dropped = 0
        self.ticks = 0

    @property
    def timer_running(self) -> bool:
        return self._timer is not None

    def follow(self, unit: str, uid: int, send: Callable[[str], Any], **kwargs: Any) -> Follower:
        self._loop = asyncio.get_running_loop()
        if len(self.followers) >= self.max_followers:
            raise TooManyFollowers(
                f"This server already follows {len(self.followers)} logs, its limit "
                "(CondaSvcApp.follow_max_followers); close another log view and try again."
            )
        self._ensure_watch()
        follower = Follower(self, unit, uid, send, **kwargs)
        self.followers.append(follower)
        # deliver what is already there (backlog, or entries after the cursor) right away
        self._loop.call_soon(self._drain_one, follower)
        self._arm()
        return follower

    def remove(self, follower: Follower) -> None:
        follower.close()
        if follower in self.followers:
            self.followers.remove(follower)
        if not self.followers:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._close_watch()

    def close(self) -> None:
        for f in list(self.followers):
            self.remove(f)
        self._close_watch()

    # -- the one journal watch --
    def _ensure_watch(self) -> None:
        if self.watch is not None:
            return
        journal = _journal_module()
        reader = journal.Reader(flags=journal.LOCAL_ONLY)
        try:
            fd = reader.fileno()  # the server's one inotify instance for the journal
            (self._loop or asyncio.get_running_loop()).add_reader(fd, self._on_watch)
        except BaseException:
            reader.close()
            raise
        self.watch, self.watch_fd = reader, fd

    def _close_watch(self) -> None:
        reader, fd, self.watch, self.watch_fd = self.watch, self.watch_fd, None, None
        if reader is None:
            return
        if self._loop is not None and fd is not None:
            try:
                self._loop.remove_reader(fd)
            except (ValueError, OSError):
                pass
        try:
            reader.close()
        except Exception:  # noqa: BLE001
            pass

    def _on_watch(self) -> None:
        """inotify: journal files were added, rotated or removed (or entries appended).  The shared
        timer does the reading (journald wakes inotify only every 250 ms, so reading here would add
        work, not speed); on a file change every follower reopens at its cursor."""
        journal = _journal_module()
        try:
            change = self.watch.process()
        except OSError:
            change = journal.INVALIDATE
            self._close_watch()
            if self.followers:
                self._ensure_watch()
        if change != journal.INVALIDATE:
            return
        for follower in list(self.followers):
            if follower.closed:
                continue
            try:
                follower.reopen()
            except Exception:  # noqa: BLE001 - e.g. the journal is gone for now: drop that follower
                if self.log is not None:
                    self.log.warning("condasvc: could not reopen a journal follower", exc_info=True)
                self.remove(follower)
        self._arm(soon=True)  # files changed: read from the last cursor right away

    def _drain_one(self, follower: Follower) -> None:
        if follower.closed:
            return
        if follower.drain(time.monotonic() + self.budget, self.max_batch):
            self._arm(soon=True)

    # -- the shared timer --
    def _arm(self, soon: bool = False) -> None:
        if not self.followers or self._loop is None:
            return
        if self._timer is not None:
            if not soon:
                return
            self._timer.cancel()
        self._timer = self._loop.call_later(0 if soon else self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.ticks += 1
        deadline = time.monotonic() + self.budget
        more = False
        order = list(self.followers)
        if len(order) > 1:  # round robin: a busy follower early in the list must not starve the rest
            k = self.ticks % len(order)
            order = order[k:] + order[:k]
        for follower in order:
            try:
                more = follower.drain(deadline, self.max_batch) or more
            except Exception:  # noqa: BLE001 - one broken follower must not stop the others
                if self.log is not None:
                    self.log.exception("condasvc: journal follower failed; reopening it")
                try:
                    follower.reopen()
                except Exception:  # noqa: BLE001
                    self.remove(follower)
            if time.monotonic() > deadline:
                more = True
                break
        self._arm(soon=more)
