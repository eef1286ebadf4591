"""Following a unit's journal live: one Reader per follower, driven from the event loop.

:class:`FollowHub` keeps one :class:`Follower` per WebSocket client.  ONE
journal watch for the whole server (a Reader whose inotify fd is watched with
``loop.add_reader``; journald wakes inotify readers only every 250 ms) tells
every follower when journal files come and go, and one shared short timer
(``interval``, 10 ms by default) reads every follower's new entries; the timer
runs only while at least one follower exists.  Work per tick is bounded by a
time budget, so a service logging at journald's maximum rate never blocks the
loop for long.  When journal files are rotated or journald restarts
(``process()`` answers ``INVALIDATE``, or reading fails), the follower
re-opens and seeks to its last cursor: no gap, no duplicate.

:class:`Tail` is the reading part alone (a Reader positioned after a cursor or
on a backlog before the tail, reading what is new): the follower reads
through one, and so does ``jupyter condasvc logs -f`` (blocking, in its own
process).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import CondaSvcError, InvalidSpec
from .query import JournalReader, LogEntry, LogQuery, journal_module, open_reader, read_entry, tail_cursor, walk


class Tail:
    """A Reader on one unit's entries that reads what is new since its cursor.

    Positioned right after ``cursor`` when given (no gap, no duplicate), else
    on the ``backlog`` newest entries.  ``read()`` returns what arrived since
    the last read; ``reopen()`` starts a fresh Reader at the cursor (after
    rotation, or a journald restart).
    """

    def __init__(
        self,
        unit: str,
        uid: int,
        *,
        cursor: Optional[str] = None,
        backlog: int = 0,
        priority: Optional[Tuple[int, int]] = None,
        boot: Optional[str] = None,
    ) -> None:
        self.unit = unit
        self.uid = uid
        self.priority = priority
        self.boot = boot
        #: the last entry read (or the position to resume at)
        self.cursor: Optional[str] = cursor
        self.reader: JournalReader
        self._steps: Iterator[Optional[int]] = iter(())
        self._open()
        try:
            if cursor:
                self._steps = walk(self.reader, cursor)
            else:
                self._position_tail(backlog)
        except BaseException:  # e.g. a bad cursor: the caller's error, without a Reader left open
            self.close()
            raise

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
        for usec in itertools.islice(walk(r, backward=True), backlog + 1):
            if usec is None:
                break
            moved += 1
            start = r._get_cursor()
        if moved > backlog and start is not None:
            # start is the entry just before the backlog: read from after it
            self.cursor = start
            self._steps = walk(r, start)
            return
        # fewer entries than asked for: everything, from the head
        r.seek_head()
        self._steps = walk(r)
        if moved == 0:
            # nothing of this unit yet: remember the global tail so a reopen resumes right there
            self.cursor = tail_cursor()
            if self.cursor:
                self._steps = walk(r, self.cursor)

    def reopen(self) -> None:
        """A fresh Reader at the last cursor (from the head when there is none, or it cannot be sought)."""
        self.close()
        self._open()
        if self.cursor:
            try:
                self._steps = walk(self.reader, self.cursor)
                return
            except InvalidSpec:
                pass
        self.reader.seek_head()
        self._steps = walk(self.reader)

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001
            pass

    def read(
        self,
        matcher: Optional[Callable[[str], bool]] = None,
        *,
        max_batch: int = 1 << 30,
        deadline: float = float("inf"),
    ) -> Tuple[List[LogEntry], bool]:
        """The new entries that ``matcher`` keeps (markers always), up to ``max_batch`` or ``deadline``
        (``time.monotonic``), and whether more may remain.  OSError when a journal file vanished."""
        r, unit, clock, steps = self.reader, self.unit, time.monotonic, self._steps
        batch: List[LogEntry] = []
        for usec in steps:
            if usec is None:
                return batch, False
            entry = read_entry(r, unit)
            self.cursor = entry["cursor"]
            if matcher is None or matcher(entry["message"]) or "marker" in entry:
                batch.append(entry)
            if len(batch) >= max_batch or clock() > deadline:
                return batch, True
        return batch, False

    def wait(self, timeout: float) -> None:
        """Block until the journal changes or ``timeout`` seconds pass (the CLI; never on the event loop)."""
        self.reader.wait(timeout)

    def batches(
        self, matcher: Optional[Callable[[str], bool]] = None, *, poll: float = 0.25
    ) -> Iterator[List[LogEntry]]:
        """New entries as they arrive, forever (blocking: ``jupyter condasvc logs -f``)."""
        while True:
            try:
                batch, more = self.read(matcher)
            except OSError:  # a journal file vanished (vacuum, journald restart): resume at the cursor
                time.sleep(poll)
                self.reopen()
                continue
            if batch:
                yield batch
            if not more:
                self.wait(poll)


class Follower:
    """One client's live view of one unit: a :class:`Tail`, a bounded send queue.

    ``send(text) -> Optional[Future]`` writes one message to the client (a
    WebSocket ``write_message``); the follower counts the bytes not yet
    flushed and, past ``max_pending`` bytes, drops entries and later tells the
    client how many (and between which cursors, so it can page them in).
    """

    def __init__(
        self,
        hub: FollowHub,
        unit: str,
        uid: int,
        send: Callable[[str], Any],
        *,
        cursor: Optional[str] = None,
        backlog: int = 0,
        priority: Optional[Tuple[int, int]] = None,
        matcher: Optional[Callable[[str], bool]] = None,
        boot: Optional[str] = None,
    ) -> None:
        self.hub = hub
        self.unit = unit
        self.send = send
        self.matcher = matcher
        self.pending_bytes = 0
        self.dropped = 0
        self._dropped_after: Optional[str] = None
        self._dropped_until: Optional[str] = None
        self.delivered = 0
        self.reopened = 0
        self.closed = False
        self.tail = Tail(unit, uid, cursor=cursor, backlog=backlog, priority=priority, boot=boot)

    @property
    def cursor(self) -> Optional[str]:
        return self.tail.cursor

    def reopen(self) -> None:
        """After rotation or a journald restart: a fresh Reader at the last cursor."""
        self.tail.reopen()
        self.reopened += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.tail.close()

    def drain(self, deadline: float, max_batch: int) -> bool:
        """Read new entries until none are left or ``deadline``; send them as one message.

        Returns True when entries may remain (the budget ran out).
        """
        if self.closed:
            return False
        try:
            batch, more = self.tail.read(self.matcher, max_batch=max_batch, deadline=deadline)
        except OSError:
            # a journal file vanished under us (vacuum, journald restart): start over at the cursor
            self.reopen()
            batch, more = [], True
        if batch:
            self._deliver(batch)
        return more

    def _deliver(self, batch: List[LogEntry]) -> None:
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
        self._write(
            {
                "type": "dropped",
                "count": count,
                "after": self._dropped_after,
                "until": self._dropped_until,
                "message": f"{count} log entries were not sent because this client could not keep up; "
                "fetch them from the history (after= the first cursor, up to and including the second).",
            }
        )

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

    def __init__(
        self,
        *,
        interval: float = 0.01,
        budget: float = 0.003,
        max_batch: int = 250,
        max_pending: int = 4 * 1024 * 1024,
        max_followers: int = 64,
        log: Any = None,
    ) -> None:
        self.interval = interval
        self.budget = budget
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.max_followers = max_followers
        self.log = log
        self.followers: List[Follower] = []
        #: the one Reader whose inotify instance watches the journal directories for all followers
        self.watch: Optional[JournalReader] = None
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
        journal = journal_module()
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
        journal, watch = journal_module(), self.watch
        if watch is None:  # closed while the loop had this callback queued
            return
        try:
            change = watch.process()
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
            except Exception:
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
            except Exception:
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


@dataclass
class LogFollow:
    """A live follow of one service's journal, resolved but not started (the service layer's answer).

    ``hello()`` is the first message a client sees; ``start(hub, send)`` follows
    on the event loop (a WebSocket); ``tail()`` reads blocking (the CLI).
    """

    name: str
    unit: str
    uid: int
    query: LogQuery
    cursor: Optional[str] = None  # resume right after it
    backlog: int = 0  # without a cursor: entries before the tail to send first
    journal: Optional[Dict[str, Any]] = None  # the journal diagnosis

    def hello(self) -> Dict[str, Any]:
        return {"type": "hello", "name": self.name, "unit": self.unit, "journal": self.journal}

    def start(self, hub: FollowHub, send: Callable[[str], Any]) -> Follower:
        q = self.query
        return hub.follow(
            self.unit,
            self.uid,
            send,
            cursor=self.cursor,
            backlog=self.backlog,
            priority=q.priority,
            matcher=q.matcher,
            boot=q.boot,
        )

    def tail(self) -> Tail:
        return Tail(
            self.unit,
            self.uid,
            cursor=self.cursor,
            backlog=self.backlog,
            priority=self.query.priority,
            boot=self.query.boot,
        )
