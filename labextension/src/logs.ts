/**
 * The log of one service in the browser: a bounded buffer of journal entries
 * (history pages plus what the follow socket pushes) and the follower that
 * keeps it live, resuming by cursor after a reconnect (no gap, no duplicate).
 */
import type { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import { sanitizeLine, stripAnsi } from './ansi';
import { ReconnectingSocket } from './socket';
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

/** Default cap of the buffer: message text, counted as UTF-16 bytes plus a per-row overhead. */
export const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const ROW_OVERHEAD = 200;

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
    this._follow = new ReconnectingSocket<FollowMessage>({
      open: () => {
        // resume after the last entry held (no gap, no duplicate), else from now
        const priority = this._filters.priority || undefined;
        const query = this._lastCursor ? { cursor: this._lastCursor, priority } : { n: 0, priority };
        this._followState = this._followState === 'off' ? 'connecting' : this._followState;
        return this._source.openFollow(this.name, query);
      },
      onMessage: message => this.handle(message),
      onLost: () => {
        this._followState = 'reconnecting';
        this._changed.emit();
      },
      setTimeout: options.setTimeout,
      clearTimeout: options.clearTimeout
    });
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
    this._follow.close();
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
      this._follow.open();
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
      this._follow.resetDelay();
      this._follow.open();
    } else {
      this._follow.close();
      this._followState = 'off';
    }
    this._changed.emit();
  }

  setFilters(filters: Partial<ILogFilters>): void {
    this._filters = { ...this._filters, ...filters };
    void this.load();
  }

  /** Feed one follow-socket message. Public for tests. */
  /** The host is back (a `lost` ended): live again, its error gone. */
  private _clearLost(): void {
    if (this._lost) {
      this._lost = false;
      this._error = '';
      this._followState = 'live';
    }
  }

  handle(message: FollowMessage): void {
    switch (message.type) {
      case 'hello':
        // Another host's follow says nothing of its journal (null): keep what its log page said.
        this._journal = message.journal ?? this._journal;
        this._followState = 'live';
        this._follow.resetDelay();
        this._clearLost();
        break;
      case 'lost':
        // Another host is out of reach: the server keeps the socket and resumes after the last cursor.
        this._followState = 'reconnecting';
        this._lost = true;
        this._error = message.error?.message || '';
        break;
      case 'entries':
        this._clearLost();
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
    this._follow.dispose();
    Signal.clearData(this);
  }

  private _query(): ILogQuery {
    return { priority: this._filters.priority || undefined, since: this._filters.since || undefined };
  }

  private _source: ILogSource;
  private _initialLines: number;
  private _follow: ReconnectingSocket<FollowMessage>;
  private _wantFollow = true;
  private _followState: FollowState = 'connecting';
  private _filters: ILogFilters = { priority: '', since: '' };
  private _lastCursor: string | null = null;
  private _firstCursor: string | null = null;
  private _moreBefore = false;
  private _loading = false;
  private _error = '';
  private _lost = false;
  private _journal: IJournalDiagnosis | null = null;
  private _generation = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
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
