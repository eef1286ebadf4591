"""Reading a user unit's journal: the query, the matches, one cursor walk, and entries as JSON-ready dicts.

Read with systemd-python (``from systemd import journal``); no ``journalctl``
subprocess anywhere.  The paged history (:mod:`.history`) and the live follow
(:mod:`.follow`) both read through :func:`open_reader`, :func:`walk` and
:func:`read_entry`; nothing outside this package drives a ``Reader``.

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
  system journal (group ``systemd-journal``); the journal diagnosis says so.

An entry (JSON)::

    {"cursor": "s=...;i=...", "realtime": "2026-11-27T03:07:38.123456+00:00",
     "realtime_usec": 1795748858123456, "priority": 6, "pid": 4242,
     "identifier": "python", "source": "service" | "manager" | "journald",
     "message": "text",
     "escaped": true,                       # only when MESSAGE was not UTF-8:
                                            # invalid bytes appear as \\xNN
     "marker": {"kind": "suppressed", "count": 2521,
                "scope": "user@1001.service"}}   # only on rate-limit markers
"""

from __future__ import annotations

import importlib
import json
import math
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple, TypedDict

from ..errors import InvalidSpec

#: json.dumps' own string escaping (ensure_ascii, the C version where there is one)
_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

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
            f"Unknown priority '{text}': use 0..7 or one of {', '.join(PRIORITY_NAMES)} "
            "(or a range like err..warning).",
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
                    f"'{value}' is not a time: use ISO 8601 (2026-01-31T12:00:00+00:00), seconds since the epoch, or "
                    "-5m/-2h/-1d.",
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
    def parse(cls, get: Callable[[str], Optional[str]], *, max_n: int = 10000, default_n: int = 100) -> LogQuery:
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
            n=n,
            before=before,
            after=after,
            priority=parse_priority(get("priority")),
            since=parse_time(get("since"), "since"),
            until=parse_time(get("until"), "until"),
            boot=parse_boot(get("boot")),
            text=text,
            regex=regex,
            matcher=text_matcher(text, regex),
        )
        if q.since is not None and q.until is not None and q.since > q.until:
            raise InvalidSpec("since is later than until.", field="since")
        return q


# -- reading -------------------------------------------------------------------
class JournalReader(Protocol):
    """What this package uses of systemd-python's ``journal.Reader``, which ships no type information.

    The underscore methods are its C layer: ``get_next()`` wraps them and
    converts every field of every entry, which a page of 1000 entries cannot
    afford.  Only this package calls them; everything else reads through
    :func:`walk` and :func:`read_entry`.
    """

    def add_match(self, *matches: str) -> None: ...
    def add_disjunction(self) -> None: ...
    def seek_head(self) -> None: ...
    def seek_tail(self) -> None: ...
    def seek_realtime(self, usec: int) -> None: ...
    def seek_cursor(self, cursor: str) -> None: ...
    def test_cursor(self, cursor: str) -> bool: ...
    def wait(self, timeout: float) -> int: ...
    def fileno(self) -> int: ...
    def process(self) -> int: ...
    def close(self) -> None: ...
    def _next(self) -> bool: ...
    def _previous(self) -> bool: ...
    def _get_all(self) -> Dict[str, Any]: ...  # bytes, or a list of bytes for a repeated field
    def _get_realtime(self) -> int: ...
    def _get_cursor(self) -> str: ...


class Marker(TypedDict):
    """journald's "Suppressed N messages" note, on a ``source: journald`` entry."""

    kind: str
    count: int
    scope: str


class _Entry(TypedDict):
    cursor: str
    realtime: str
    realtime_usec: int
    priority: Optional[int]
    pid: Optional[int]
    identifier: Optional[str]
    source: str  # service | manager | journald
    message: str


class LogEntry(_Entry, total=False):
    """One journal entry as the wire's ``LogEntry``: see the module's docstring."""

    escaped: bool
    untrusted: bool
    origin: Optional[str]
    marker: Marker


def journal_module() -> ModuleType:
    """systemd-python's ``systemd.journal``, imported when a journal is first read."""
    return importlib.import_module("systemd.journal")


def open_reader(
    unit: str,
    uid: int,
    *,
    priority: Optional[Tuple[int, int]] = None,
    boot: Optional[str] = None,
    ident: Optional[str] = None,
) -> JournalReader:
    """A ``journal.Reader`` matching the unit's entries and the rate-limit markers of its user (and, with
    ``ident``, the unit's output whose unit journald lost: see :func:`add_unit_matches`)."""
    journal = journal_module()
    reader: JournalReader = journal.Reader(flags=journal.LOCAL_ONLY)
    try:
        add_unit_matches(reader, unit, uid, priority=priority, boot=boot, ident=ident)
    except BaseException:
        reader.close()
        raise
    return reader


def add_unit_matches(
    reader: JournalReader,
    unit: str,
    uid: int,
    *,
    priority: Optional[Tuple[int, int]] = None,
    boot: Optional[str] = None,
    ident: Optional[str] = None,
) -> None:
    """Match the unit's entries (its processes', and the manager's about it), the user's rate-limit markers and,
    with ``ident`` (the unit's SyslogIdentifier), the unit's output whose unit journald lost.

    journald learns a stdout line's unit from the writer's cgroup when it reads the line; when it reads late
    (a busy journald) and the writer is gone, the line is stored with no ``_SYSTEMD_*`` field at all, for user
    units always (the stream's own unit name is taken only from root's streams). Such a line still has its
    ``SYSLOG_IDENTIFIER`` (from the stream's header), ``_UID`` and ``_TRANSPORT=stdout``: the third term
    finds it, and :func:`read_entry` keeps it only if it has no cgroup (another unit's or a shell's stdout
    with the same identifier has one, and is marked ``FOREIGN`` for the walkers to skip). This is how a
    crashing script's last lines (its traceback) stay in its log.
    """
    extra: List[str] = []
    if priority is not None:
        extra += [f"PRIORITY={p}" for p in range(priority[0], priority[1] + 1)]
    if boot:
        extra.append(f"_BOOT_ID={boot}")
    for key in ("_SYSTEMD_USER_UNIT", "USER_UNIT"):
        reader.add_match(f"{key}={unit}", f"_UID={uid}", *extra)
        reader.add_disjunction()
    if ident:
        reader.add_match(f"SYSLOG_IDENTIFIER={ident}", f"_UID={uid}", "_TRANSPORT=stdout", *extra)
        reader.add_disjunction()
    # _UID=0: written by journald itself; a service printing the same fields cannot fake a marker
    marker = [f"MESSAGE_ID={MESSAGE_ID_DROPPED}", f"OBJECT_SYSTEMD_UNIT=user@{uid}.service", "_UID=0"]
    if boot:
        marker.append(f"_BOOT_ID={boot}")
    reader.add_match(*marker)


#: ``source`` of an entry a unit's matches find that is not the unit's: the walkers skip it, it is never sent.
FOREIGN = "foreign"

#: The query arguments that filter a live follow (the rest of a page's arguments place a page).
FOLLOW_FILTERS = ("priority", "boot", "text", "regex")

_iso_pair: List[Tuple[int, str]] = [(-1, "")]


def read_entry(reader: JournalReader, unit: str) -> LogEntry:
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
        message = as_str(raw) or ""
    usec = reader._get_realtime()
    sec, frac = divmod(usec, 1_000_000)
    # one (second, text) pair swapped whole: history pages are read by several threads at once
    cached_second = _iso_pair[0]
    if cached_second[0] != sec:
        cached_second = _iso_pair[0] = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    prio = get("PRIORITY")
    pid = get("_PID")
    ident = get("SYSLOG_IDENTIFIER")
    entry: LogEntry = {
        "cursor": reader._get_cursor(),
        "realtime": f"{cached_second[1]}.{frac:06d}+00:00",
        "realtime_usec": usec,
        "priority": int(prio) if prio.__class__ is bytes and prio.isdigit() else as_int(prio),
        "pid": int(pid) if pid.__class__ is bytes and pid.isdigit() else as_int(pid),
        "identifier": ident.decode("utf-8", "backslashreplace") if ident.__class__ is bytes else as_str(ident),
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
        if transport == b"stdout":
            # found by its SYSLOG_IDENTIFIER only (a stdout line carries no other field of its writer's choosing):
            # the unit's own when journald lost its writer's cgroup, else another process's (add_unit_matches)
            if get("_SYSTEMD_CGROUP") is not None:
                entry["source"] = FOREIGN
        elif as_str(get("MESSAGE_ID")) == MESSAGE_ID_DROPPED and _first(get("_UID")) == b"0" and transport == b"driver":
            count = as_int(get("N_DROPPED")) or 0
            scope = as_str(get("OBJECT_SYSTEMD_UNIT")) or ""
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
            entry["origin"] = as_str(sender) or as_str(get("_COMM"))
    return entry


_ENTRY_KEYS = tuple(_Entry.__annotations__)  # cursor, realtime, ..., message: read_entry's order


def entry_json(entry: LogEntry) -> str:
    """``json.dumps(entry)``, byte for byte, written out for the common entry (the eight keys every entry has,
    nothing else: a service's or the manager's line): ~1.2 us instead of json.dumps' ~2.5 us, 1000 times per
    cold page. The strings go through json's own (C) escaping; any other entry is handed to json.dumps."""
    if tuple(entry) != _ENTRY_KEYS:
        return json.dumps(entry)
    usec, prio, pid, ident = entry["realtime_usec"], entry["priority"], entry["pid"], entry["identifier"]
    if not (
        usec.__class__ is int
        and (prio is None or prio.__class__ is int)
        and (pid is None or pid.__class__ is int)
        and (ident is None or ident.__class__ is str)
        and entry["cursor"].__class__ is entry["realtime"].__class__ is entry["source"].__class__ is str
        and entry["message"].__class__ is str
    ):
        return json.dumps(entry)  # not read_entry's types (a bool, a float, a str subclass): json.dumps decides
    return (
        f'{{"cursor": {_json_str(entry["cursor"])}, "realtime": {_json_str(entry["realtime"])}, '
        f'"realtime_usec": {usec}, "priority": {"null" if prio is None else prio}, '
        f'"pid": {"null" if pid is None else pid}, "identifier": {"null" if ident is None else _json_str(ident)}, '
        f'"source": {_json_str(entry["source"])}, "message": {_json_str(entry["message"])}}}'
    )


def _first(value: Any) -> Any:
    """A field that occurs more than once comes back as a list: take the first."""
    return value[0] if isinstance(value, list) and value else value


def as_int(value: Any) -> Optional[int]:
    value = _first(value)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> Optional[str]:
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


def seek_cursor(reader: JournalReader, cursor: str) -> None:
    """Position ``reader`` on ``cursor`` (or where it was, if that entry is gone); InvalidSpec for a bad cursor."""
    check_cursor(cursor)
    try:
        reader.seek_cursor(cursor)
    except (OSError, ValueError):
        raise InvalidSpec(f"'{cursor}' is not a journal cursor.", field="cursor") from None


def walk(reader: JournalReader, cursor: Optional[str] = None, *, backward: bool = False) -> Iterator[Optional[int]]:
    """Step ``reader`` over its entries, after (or, ``backward``, before) ``cursor``: the one cursor walk.

    Yields each entry's realtime (usec) with the reader positioned on it, and
    None whenever there is nothing more for now.  A page stops at the first
    None; a live reader (follow) keeps the same generator and asks again
    later, so a cursor seeked to but not yet passed is still skipped then.
    Seeking to a cursor lands on that entry when it still exists, so the walk
    passes over it: no duplicate, no gap.  Without ``cursor`` it starts where
    the reader stands (after ``seek_head``/``seek_tail``/``seek_realtime``).
    """
    if cursor is not None:
        seek_cursor(reader, cursor)  # here, not at the first step: a bad cursor is the caller's error at once
    return _steps(reader, cursor, backward)


def _steps(reader: JournalReader, skip: Optional[str], backward: bool) -> Iterator[Optional[int]]:
    step, realtime, test = (reader._previous if backward else reader._next), reader._get_realtime, reader.test_cursor
    while True:
        if not step():
            yield None
            continue
        if skip is not None:
            s, skip = skip, None
            if test(s):
                continue
        yield realtime()


def tail_cursor() -> Optional[str]:
    """The cursor of the newest entry this user can read (any unit)."""
    journal = journal_module()
    reader = journal.Reader(flags=journal.LOCAL_ONLY)
    try:
        reader.seek_tail()
        return reader._get_cursor() if next(walk(reader, backward=True)) is not None else None
    finally:
        reader.close()


#: Terminal escape sequences (CSI such as colours, OSC such as titles and links, two-byte escapes).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def format_text(entries: Iterable[LogEntry]) -> str:
    """Like ``journalctl -o short-iso-precise``: one line per entry, without terminal escape sequences."""
    lines = []
    for e in entries:
        ident = e.get("identifier") or "-"
        pid = f"[{e['pid']}]" if e.get("pid") else ""
        message = _ESCAPES.sub("", e["message"]).replace("\n", "\n    ")
        lines.append(f"{e['realtime']} {ident}{pid}: {message}")
    return "\n".join(lines) + ("\n" if lines else "")
