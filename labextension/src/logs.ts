/**
 * The log of one service in the browser: a bounded buffer of journal entries
 * (history pages plus what the follow socket pushes) and the follower that
 * keeps it live, resuming by cursor after a reconnect (no gap, no duplicate).
 */
import type { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import type { FollowMessage, IJournalDiagnosis, ILogEntry, ILogPage, ILogQuery, ISocketLike } from './tokens';

/** One row of the viewer: a journal entry, or a gap the follow socket reported. */
export interface ILogRow extends ILogEntry {
  /** Set on a synthetic row: this many entries were not delivered here. */
  dropped?: number;
  /** The message without escape sequences (search, measuring); set by the buffer. */
  plain?: string;
  /** Characters of the message not kept (past MAX_LINE_CHARS); the download has them. */
  omitted?: number;
}

/**
 * What one line may cost the browser, whatever a service prints: the characters
 * kept and shown, and the styled pieces (one DOM node each) it may become.
 */
export const MAX_LINE_CHARS = 4096;
export const MAX_SEGMENTS = 64;
/** Default cap of the buffer: message text, counted as UTF-16 bytes plus a per-row overhead. */
export const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const ROW_OVERHEAD = 200;

// eslint-disable-next-line no-control-regex
const STRING_ESCAPES = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[\s\S]*?(?:\x07|\x1b\\|\x9c|$)/g;
// eslint-disable-next-line no-control-regex
const CSI_ANY = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]/g;
// eslint-disable-next-line no-control-regex
const KEPT_SGR = /^\x1b\[[0-9;]*m$/;
// eslint-disable-next-line no-control-regex
const OTHER_CONTROLS = /\x1b(?!\[[0-9;]*m)(?:[ -/]*[0-~])?|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]/g;
// eslint-disable-next-line no-control-regex
const PARTIAL_SGR = /\x1b(?:\[[0-9;]*)?$/;

/**
 * A message as the viewer may show it: OSC sequences (titles, hyperlinks) and
 * every other escape or control character removed, except colour/bold SGR
 * codes and tabs; at most MAX_LINE_CHARS characters kept.  Linear time.
 */
export function sanitizeLine(message: string): { text: string; omitted: number } {
  let text = message.length > 4 * MAX_LINE_CHARS ? message.slice(0, 4 * MAX_LINE_CHARS) : message;
  let omitted = message.length - text.length;
  text = text
    .replace(STRING_ESCAPES, '')
    .replace(CSI_ANY, seq => (KEPT_SGR.test(seq) ? seq : ''))
    .replace(OTHER_CONTROLS, '');
  if (text.length > MAX_LINE_CHARS) {
    omitted += text.length - MAX_LINE_CHARS;
    text = text.slice(0, MAX_LINE_CHARS).replace(PARTIAL_SGR, '');
  }
  return { text, omitted };
}

/** A journal entry as a buffer row: its message sanitised and capped, its plain text cached. */
export function toRow(entry: ILogEntry): ILogRow {
  const { text, omitted } = sanitizeLine(entry.message);
  const row: ILogRow = { ...entry, message: text, plain: stripAnsi(text) };
  if (omitted > 0) {
    row.omitted = omitted;
  }
  return row;
}

function rowBytes(row: ILogRow): number {
  const plain = row.plain !== undefined && row.plain !== row.message ? row.plain.length : 0;
  return 2 * (row.message.length + plain) + ROW_OVERHEAD;
}

export class LogBuffer {
  constructor(
    readonly maxRows = 200000,
    readonly maxBytes = DEFAULT_MAX_BYTES
  ) {}

  /** Estimated bytes held (message text and a per-row overhead). */
  get bytes(): number {
    return this._bytes;
  }

  get rows(): ReadonlyArray<ILogRow> {
    return this._rows;
  }

  get length(): number {
    return this._rows.length;
  }

  /** Rows removed from the front to stay within maxRows. */
  get trimmed(): number {
    return this._trimmed;
  }

  /** Bumped on every change, for views that memoise on it. */
  get version(): number {
    return this._version;
  }

  clear(): void {
    this._rows = [];
    this._seen.clear();
    this._trimmed = 0;
    this._bytes = 0;
    this._version++;
  }

  append(entries: ReadonlyArray<ILogEntry>): number {
    let added = 0;
    for (const entry of entries) {
      if (this._seen.has(entry.cursor)) {
        continue;
      }
      this._seen.add(entry.cursor);
      const row = toRow(entry);
      this._rows.push(row);
      this._bytes += rowBytes(row);
      added++;
    }
    this._trim();
    this._version++;
    return added;
  }

  /** Older entries in front; only as many (newest first) as fit within maxRows and maxBytes. */
  prepend(entries: ReadonlyArray<ILogEntry>): number {
    const fresh: ILogRow[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (this._seen.has(e.cursor)) {
        continue;
      }
      const row = toRow(e);
      const size = rowBytes(row);
      if (this._rows.length + fresh.length >= this.maxRows || this._bytes + size > this.maxBytes) {
        break;
      }
      this._seen.add(e.cursor);
      this._bytes += size;
      fresh.push(row);
    }
    fresh.reverse();
    this._rows = [...fresh, ...this._rows];
    this._version++;
    return fresh.length;
  }

  appendGap(count: number, message: string): void {
    const last = this._rows[this._rows.length - 1];
    this._bytes += ROW_OVERHEAD + 2 * message.length;
    this._rows.push({
      cursor: `gap:${this._version}:${this._rows.length}`,
      realtime: last?.realtime ?? new Date().toISOString(),
      realtime_usec: last?.realtime_usec ?? Date.now() * 1000,
      priority: 4,
      pid: null,
      identifier: null,
      source: 'journald',
      message,
      dropped: count
    });
    this._version++;
  }

  private _trim(): void {
    let excess = Math.max(0, this._rows.length - this.maxRows);
    let bytes = this._bytes;
    for (let i = 0; i < excess; i++) {
      bytes -= rowBytes(this._rows[i]);
    }
    // then by bytes, keeping the newest row whatever its size
    while (bytes > this.maxBytes && excess < this._rows.length - 1) {
      bytes -= rowBytes(this._rows[excess]);
      excess++;
    }
    if (excess > 0) {
      for (const row of this._rows.slice(0, excess)) {
        this._seen.delete(row.cursor);
      }
      this._rows = this._rows.slice(excess);
      this._trimmed += excess;
    }
    this._bytes = bytes;
  }

  private _rows: ILogRow[] = [];
  private _seen = new Set<string>();
  private _trimmed = 0;
  private _bytes = 0;
  private _version = 0;
}

/** What the follower needs from the API (CondaSvcAPI in the app, a fake in tests). */
export interface ILogSource {
  logs(name: string, query: ILogQuery): Promise<ILogPage>;
  openFollow(name: string, query: { cursor?: string; n?: number; priority?: string }): ISocketLike;
}

export interface ILogFilters {
  /** '' for all, else 0..7 (that level and more severe). */
  priority: string;
  /** '' for all, else -5m, -1h, -1d ... */
  since: string;
}

export type FollowState = 'off' | 'connecting' | 'live' | 'reconnecting';

export class LogFollower implements IDisposable {
  constructor(options: {
    source: ILogSource;
    name: string;
    initialLines?: number;
    maxRows?: number;
    maxBytes?: number;
    setTimeout?: (fn: () => void, ms: number) => unknown;
    clearTimeout?: (handle: unknown) => void;
  }) {
    this._source = options.source;
    this.name = options.name;
    this._initialLines = options.initialLines ?? 1000;
    this.buffer = new LogBuffer(options.maxRows, options.maxBytes);
    this._setTimeout = options.setTimeout ?? ((fn, ms) => window.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? (handle => window.clearTimeout(handle as number));
  }

  readonly name: string;
  readonly buffer: LogBuffer;

  get changed(): Signal<this, void> {
    return this._changed;
  }

  get followState(): FollowState {
    return this._followState;
  }

  get following(): boolean {
    return this._wantFollow;
  }

  get filters(): ILogFilters {
    return this._filters;
  }

  get moreBefore(): boolean {
    return this._moreBefore;
  }

  get loading(): boolean {
    return this._loading;
  }

  get error(): string {
    return this._error;
  }

  get journal(): IJournalDiagnosis | null {
    return this._journal;
  }

  get lastCursor(): string | null {
    return this._lastCursor;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Load the newest page, then follow if asked. */
  async load(): Promise<void> {
    const generation = ++this._generation;
    this._closeSocket();
    this.buffer.clear();
    this._lastCursor = null;
    this._firstCursor = null;
    this._loading = true;
    this._error = '';
    this._changed.emit();
    try {
      const page = await this._source.logs(this.name, { n: this._initialLines, ...this._query() });
      if (generation !== this._generation || this._disposed) {
        return;
      }
      this.buffer.append(page.entries);
      this._lastCursor = page.last_cursor;
      this._firstCursor = page.first_cursor;
      this._moreBefore = page.more_before;
      this._journal = page.journal;
    } catch (error) {
      if (generation !== this._generation) {
        return;
      }
      this._error = (error as Error).message;
    }
    this._loading = false;
    this._changed.emit();
    if (this._wantFollow) {
      this._openSocket();
    }
  }

  /** Older entries before the first one shown. */
  async loadOlder(n = 1000): Promise<void> {
    if (!this._firstCursor || this._loading) {
      return;
    }
    const generation = this._generation;
    this._loading = true;
    this._changed.emit();
    try {
      const page = await this._source.logs(this.name, { n, before: this._firstCursor, ...this._query() });
      if (generation === this._generation) {
        this.buffer.prepend(page.entries);
        this._firstCursor = page.first_cursor ?? this._firstCursor;
        this._moreBefore = page.more_before;
      }
    } catch (error) {
      this._error = (error as Error).message;
    }
    this._loading = false;
    this._changed.emit();
  }

  setFollow(follow: boolean): void {
    if (follow === this._wantFollow) {
      return;
    }
    this._wantFollow = follow;
    if (follow) {
      this._delay = 250;
      this._openSocket();
    } else {
      this._closeSocket();
      this._followState = 'off';
    }
    this._changed.emit();
  }

  setFilters(filters: Partial<ILogFilters>): void {
    this._filters = { ...this._filters, ...filters };
    void this.load();
  }

  /** Feed one follow-socket message. Public for tests. */
  handle(message: FollowMessage): void {
    switch (message.type) {
      case 'hello':
        this._journal = message.journal;
        this._followState = 'live';
        this._delay = 250;
        break;
      case 'entries':
        this.buffer.append(message.entries);
        this._lastCursor = message.cursor || this._lastCursor;
        break;
      case 'dropped':
        this.buffer.appendGap(message.count, message.message);
        this._lastCursor = message.until || this._lastCursor;
        break;
      case 'error':
        this._error = message.message;
        break;
    }
    this._changed.emit();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._closeSocket();
    Signal.clearData(this);
  }

  private _query(): ILogQuery {
    return { priority: this._filters.priority || undefined, since: this._filters.since || undefined };
  }

  private _openSocket(): void {
    this._closeSocket();
    if (this._disposed || !this._wantFollow) {
      return;
    }
    const query = this._lastCursor
      ? { cursor: this._lastCursor, priority: this._filters.priority || undefined }
      : { n: 0, priority: this._filters.priority || undefined };
    this._followState = this._followState === 'off' ? 'connecting' : this._followState;
    let socket: ISocketLike;
    try {
      socket = this._source.openFollow(this.name, query);
    } catch {
      this._reconnectLater();
      return;
    }
    this._socket = socket;
    socket.onmessage = ev => {
      try {
        this.handle(JSON.parse(String(ev.data)) as FollowMessage);
      } catch {
        // ignore a malformed message
      }
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
        this._reconnectLater();
      }
    };
    socket.onerror = () => {
      // onclose follows
    };
    socket.onopen = null;
  }

  private _reconnectLater(): void {
    if (this._disposed || !this._wantFollow) {
      return;
    }
    this._followState = 'reconnecting';
    this._changed.emit();
    const delay = this._delay;
    this._delay = Math.min(this._delay * 2, 15000);
    this._timer = this._setTimeout(() => {
      this._timer = null;
      this._openSocket();
    }, delay);
  }

  private _closeSocket(): void {
    if (this._timer !== null) {
      this._clearTimeout(this._timer);
      this._timer = null;
    }
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close();
    }
  }

  private _source: ILogSource;
  private _initialLines: number;
  private _setTimeout: (fn: () => void, ms: number) => unknown;
  private _clearTimeout: (handle: unknown) => void;
  private _timer: unknown = null;
  private _socket: ISocketLike | null = null;
  private _wantFollow = true;
  private _followState: FollowState = 'connecting';
  private _filters: ILogFilters = { priority: '', since: '' };
  private _lastCursor: string | null = null;
  private _firstCursor: string | null = null;
  private _moreBefore = false;
  private _loading = false;
  private _error = '';
  private _journal: IJournalDiagnosis | null = null;
  private _delay = 250;
  private _generation = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}

/** A segment of a log line with its ANSI SGR style. */
export interface IAnsiSegment {
  text: string;
  fg?: number;
  bg?: number;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
}

// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[([0-9;]*)m/g;
// eslint-disable-next-line no-control-regex
const OTHER_ESCAPES = /\x1b\[[0-9;?]*[A-Za-ln-z]/g;

function sameStyle(a: Omit<IAnsiSegment, 'text'>, b: Omit<IAnsiSegment, 'text'>): boolean {
  return a.fg === b.fg && a.bg === b.bg && !a.bold === !b.bold && !a.italic === !b.italic && !a.underline === !b.underline;
}

/**
 * Split a line into segments by ANSI SGR codes (colours 0-15; other escapes dropped).
 * Adjacent segments of the same style are merged, and a line becomes at most
 * MAX_SEGMENTS segments: past that, the rest keeps the last style.
 */
export function parseAnsi(line: string): IAnsiSegment[] {
  const text = line.replace(OTHER_ESCAPES, '');
  const segments: IAnsiSegment[] = [];
  let style: Omit<IAnsiSegment, 'text'> = {};
  let last = 0;
  const push = (piece: string) => {
    const prev = segments[segments.length - 1];
    if (prev && (segments.length >= MAX_SEGMENTS || sameStyle(prev, style))) {
      prev.text += piece;
    } else {
      segments.push({ text: piece, ...style });
    }
  };
  SGR.lastIndex = 0;
  for (let m = SGR.exec(text); m; m = SGR.exec(text)) {
    if (m.index > last) {
      push(text.slice(last, m.index));
    }
    last = m.index + m[0].length;
    const codes = m[1] === '' ? [0] : m[1].split(';').map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) {
        style = {};
      } else if (c === 1) {
        style = { ...style, bold: true };
      } else if (c === 3) {
        style = { ...style, italic: true };
      } else if (c === 4) {
        style = { ...style, underline: true };
      } else if (c === 22) {
        style = { ...style, bold: false };
      } else if (c >= 30 && c <= 37) {
        style = { ...style, fg: c - 30 };
      } else if (c >= 90 && c <= 97) {
        style = { ...style, fg: c - 90 + 8 };
      } else if (c === 39) {
        style = { ...style, fg: undefined };
      } else if (c >= 40 && c <= 47) {
        style = { ...style, bg: c - 40 };
      } else if (c >= 100 && c <= 107) {
        style = { ...style, bg: c - 100 + 8 };
      } else if (c === 49) {
        style = { ...style, bg: undefined };
      } else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const n = codes[i + 2];
        if (n !== undefined && n < 16) {
          style = c === 38 ? { ...style, fg: n } : { ...style, bg: n };
        }
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        i += 4;
      }
    }
  }
  if (last < text.length) {
    push(text.slice(last));
  }
  return segments;
}

/** Strip ANSI escapes (for search and measuring). */
export function stripAnsi(line: string): string {
  return line.replace(SGR, '').replace(OTHER_ESCAPES, '');
}

/** Indices of rows whose message contains `needle` (case-insensitive unless it has capitals). */
export function findMatches(rows: ReadonlyArray<ILogRow>, needle: string): number[] {
  if (!needle) {
    return [];
  }
  const sensitive = needle !== needle.toLowerCase();
  const n = sensitive ? needle : needle.toLowerCase();
  const out: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const text = rows[i].plain ?? stripAnsi(rows[i].message);
    if ((sensitive ? text : text.toLowerCase()).includes(n)) {
      out.push(i);
    }
  }
  return out;
}

/**
 * Windowing for rows of variable height: row i occupies `heights[i]` pixels.
 * `offsets` is the prefix sum, so finding the first visible row is a binary search.
 */
export class RowLayout {
  constructor(heights: ArrayLike<number>) {
    const n = heights.length;
    this.offsets = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      this.offsets[i + 1] = this.offsets[i] + heights[i];
    }
  }

  readonly offsets: Float64Array;

  get total(): number {
    return this.offsets[this.offsets.length - 1];
  }

  get count(): number {
    return this.offsets.length - 1;
  }

  /** The row at pixel offset y. */
  indexAt(y: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid + 1] <= y) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return Math.min(lo, Math.max(0, this.count - 1));
  }

  /** [first, last) rows to render for a viewport, with overscan. */
  range(scrollTop: number, height: number, overscan = 20): [number, number] {
    if (this.count === 0) {
      return [0, 0];
    }
    const first = Math.max(0, this.indexAt(scrollTop) - overscan);
    const last = Math.min(this.count, this.indexAt(scrollTop + height) + 1 + overscan);
    return [first, last];
  }
}
