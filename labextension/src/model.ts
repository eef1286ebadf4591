/**
 * The single source of truth in the browser: every service with its live
 * status, fed by the server's status stream (a snapshot on connect, then
 * pushed changes). Widgets read from it and listen to its signals; none of
 * them fetch the list on their own.
 */
import type { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import { compareHosts, hostOf, keyOf, orderHosts, serviceKey } from './hosts';
import { ReconnectingSocket } from './socket';
import { LOCAL_HOST } from './tokens';
import type {
  ConnectionState,
  DisplayState,
  IHostReport,
  IHostState,
  IService,
  IServicesModel,
  ISocketLike,
  StatusMessage
} from './tokens';

/** The state shown for a service: systemd's active state, folded for people. */
export function displayState(service: IService): DisplayState {
  const status = service.status;
  switch (status.active_state) {
    case 'active':
    case 'reloading':
      return 'running';
    case 'activating':
      return 'starting';
    case 'deactivating':
      return 'stopping';
    case 'failed':
      return 'failed';
    case 'inactive': {
      const timer = status.schedule;
      if (service.spec.schedule && timer && (timer.timer_state === 'active' || timer.next_run)) {
        return 'scheduled';
      }
      return 'stopped';
    }
    default:
      return 'unknown';
  }
}

export const DISPLAY_STATES: DisplayState[] = [
  'running',
  'starting',
  'stopping',
  'scheduled',
  'failed',
  'stopped',
  'unknown'
];

export interface IServicesModelOptions {
  /** Opens the status stream (CondaSvcAPI.openEvents in the app, a fake in tests). */
  connect: () => ISocketLike;
  /** Reads the host report (GET host); optional. */
  fetchHost?: () => Promise<IHostReport>;
  /** First reconnect delay in ms (doubles up to maxDelay); default RECONNECT_INITIAL_MS and RECONNECT_MAX_MS. */
  initialDelay?: number;
  maxDelay?: number;
  /** Timer functions, replaceable in tests. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

export class ServicesModel implements IServicesModel, IDisposable {
  constructor(options: IServicesModelOptions) {
    this._fetchHost = options.fetchHost;
    this._setTimeout = options.setTimeout ?? ((fn, ms) => window.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? (handle => window.clearTimeout(handle as number));
    this._stream = new ReconnectingSocket<StatusMessage>({
      open: () => {
        this._setConnection('connecting');
        return options.connect();
      },
      onOpen: () => {
        this._stream.resetDelay();
        this._setConnection('open');
      },
      onMessage: message => this.handle(message),
      onLost: () => this._setConnection('closed'),
      initialDelay: options.initialDelay,
      maxDelay: options.maxDelay,
      setTimeout: this._setTimeout,
      clearTimeout: this._clearTimeout
    });
  }

  get services(): ReadonlyArray<IService> {
    return this._sorted;
  }

  get connection(): ConnectionState {
    return this._connection;
  }

  get managerReachable(): boolean | null {
    return this._managerReachable;
  }

  get managerMessage(): string {
    return this._managerMessage;
  }

  get host(): IHostReport | null {
    return this._host;
  }

  get hosts(): ReadonlyArray<IHostState> {
    return this._hostList;
  }

  get multiHost(): boolean {
    return this._hostList.length > 1;
  }

  hostState(name: string): IHostState | undefined {
    return this._hosts.get(name);
  }

  /** True once the first snapshot arrived. */
  get ready(): boolean {
    return this._ready;
  }

  /** The delay before the next reconnect attempt, in ms. */
  get reconnectDelay(): number {
    return this._stream.delay;
  }

  get changed(): Signal<this, void> {
    return this._changed;
  }

  get serviceFailed(): Signal<this, IService> {
    return this._serviceFailed;
  }

  get connectionChanged(): Signal<this, ConnectionState> {
    return this._connectionChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * The user acted on a service. After a stop or delete the user asked for,
   * the failure that may come with it (a watchdog result, a kill) is not
   * news; a start, restart or reset begins a new failure episode.
   */
  userAction(name: string, action: string, host?: string): void {
    const key = serviceKey(name, host);
    if (action === 'stop' || action === 'delete') {
      this._quiet.add(key);
    } else if (['start', 'restart', 'reset-failed', 'reset-and-start', 'run-now'].includes(action)) {
      this._quiet.delete(key);
      this._episodes.delete(key);
    }
  }

  get(name: string, host?: string): IService | undefined {
    return this._services.get(serviceKey(name, host));
  }

  counts(): Record<DisplayState, number> {
    const counts = Object.fromEntries(DISPLAY_STATES.map(s => [s, 0])) as Record<DisplayState, number>;
    for (const service of this._services.values()) {
      counts[displayState(service)] += 1;
    }
    return counts;
  }

  /** Open the status stream (idempotent). */
  start(): void {
    if (this._stream.active || this._disposed) {
      return;
    }
    this._stream.open();
    void this.refreshHost();
  }

  async refreshHost(): Promise<void> {
    if (!this._fetchHost) {
      return;
    }
    try {
      this._host = await this._fetchHost();
    } catch {
      this._host = null;
    }
    this._changed.emit();
  }

  /**
   * Make a service the API just created known, should its push not have
   * arrived yet (pushes remain the source of every later change).
   */
  ensure(service: IService): void {
    if (!this._services.has(keyOf(service))) {
      this._services.set(keyOf(service), service);
      this._sort();
      this._changed.emit();
    }
  }

  /**
   * While the host report says logs are not readable, a service changing
   * state (and so logging) is the moment to ask again: the banner clears
   * itself once journald writes the user's file. At most every few seconds.
   */
  private _recheckJournal(): void {
    if (!this._host || this._host.journal.readable || this._journalRecheck) {
      return;
    }
    this._journalRecheck = this._setTimeout(() => {
      this._journalRecheck = null;
      void this.refreshHost();
    }, 3000);
  }

  /** Apply one message of the status stream. Public so tests can feed it. */
  handle(message: StatusMessage): void {
    switch (message.type) {
      case 'snapshot': {
        const next = new Map<string, IService>();
        for (const service of message.services) {
          next.set(keyOf(service), service);
        }
        const before = this._services;
        this._services = next;
        this._managerReachable = true;
        this._managerMessage = '';
        if (this._ready) {
          for (const [key, service] of next) {
            this._checkFailed(before.get(key), service);
          }
        }
        this._setHosts(message.hosts);
        this._ready = true;
        break;
      }
      case 'service': {
        // The message's host is the service's (a service of an older server has neither: local).
        const service =
          message.host && !message.service.host ? { ...message.service, host: message.host } : message.service;
        const key = keyOf(service);
        const before = this._services.get(key);
        this._services.set(key, service);
        this._checkFailed(before, service);
        break;
      }
      case 'status': {
        // A state change at once, from systemd's signal; the full object follows.
        const key = serviceKey(message.name, message.host);
        const before = this._services.get(key);
        if (!before) {
          return;
        }
        const after = { ...before, status: { ...before.status, ...message.status } };
        this._services.set(key, after);
        this._checkFailed(before, after);
        if ((message.host || LOCAL_HOST) === LOCAL_HOST) {
          this._recheckJournal();
        }
        break;
      }
      case 'removed': {
        const key = serviceKey(message.name, message.host);
        this._services.delete(key);
        this._episodes.delete(key);
        this._quiet.delete(key);
        break;
      }
      case 'metrics':
        for (const [name, metrics] of Object.entries(message.services)) {
          const key = serviceKey(name, message.host);
          const service = this._services.get(key);
          if (service) {
            this._services.set(key, { ...service, status: { ...service.status, ...metrics } });
          }
        }
        break;
      case 'host': {
        // A host's state changed; a down host's services stay, re-sent by the server marked stale.
        const host = message.host;
        if (!host || typeof host.name !== 'string') {
          return;
        }
        this._hosts.set(host.name, host);
        this._hostList = orderHosts(this._hosts.values());
        break;
      }
      case 'manager': {
        if ((message.host || LOCAL_HOST) !== LOCAL_HOST) {
          // Another host's user manager: that host's state (a `host` message) says it, not the local banner.
          return;
        }
        const wasReachable = this._managerReachable;
        this._managerReachable = false;
        this._managerMessage = message.message;
        if (wasReachable !== false) {
          void this.refreshHost();
        }
        break;
      }
      default:
        return;
    }
    this._sort();
    this._changed.emit();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._stream.dispose();
    if (this._journalRecheck !== null) {
      this._clearTimeout(this._journalRecheck);
      this._journalRecheck = null;
    }
    Signal.clearData(this);
  }

  /**
   * One notification per failure episode per service: the first failure (or
   * crash loop) emits serviceFailed; later ones stay quiet until the episode
   * ends: a run that ends cleanly, or a start/restart/reset by the user
   * (userAction). A stop or delete the user asked for raises none.
   */
  private _checkFailed(before: IService | undefined, after: IService): void {
    // Another host's services arrive when its connection does (after the snapshot) and come back after an
    // outage: a state first seen then, or kept as last known (stale), is not news.
    if (after.stale || (before === undefined && hostOf(after) !== LOCAL_HOST)) {
      return;
    }
    const name = keyOf(after);
    const state = displayState(after);
    const troubled = state === 'failed' || after.status.crash_looping === true;
    if (this._quiet.has(name)) {
      if (state === 'stopped' || state === 'failed' || state === 'scheduled') {
        this._quiet.delete(name); // the stop is done; what follows is news again
      }
      return;
    }
    // A clean end closes the episode: the main process exited (CLD_EXITED) with 0. Not a crash loop's steps:
    // between two automatic restarts systemd passes through inactive with its result reset to success while the
    // last exit is still the crash's, and a new process's start zeroes ExecMainCode/Status (Service interface)
    // in a signal of its own, which can arrive before the Unit interface's "activating".
    if (
      after.status.active_state === 'inactive' &&
      after.status.result === 'success' &&
      after.status.exec_main_code === 1 &&
      after.status.exec_main_status === 0
    ) {
      this._episodes.delete(name);
      return;
    }
    const wasTroubled =
      before !== undefined && (displayState(before) === 'failed' || before.status.crash_looping === true);
    if (!troubled || wasTroubled || this._episodes.has(name)) {
      return;
    }
    this._episodes.add(name);
    this._serviceFailed.emit(after);
  }

  private _sort(): void {
    this._sorted = [...this._services.values()].sort(
      (a, b) => a.name.localeCompare(b.name) || compareHosts(hostOf(a), hostOf(b))
    );
  }

  /** The hosts of a snapshot; a server without hosts (or an older one) has only `local`. */
  private _setHosts(hosts: IHostState[] | undefined): void {
    this._hosts = new Map();
    for (const host of hosts ?? []) {
      this._hosts.set(host.name, host);
    }
    if (!this._hosts.has(LOCAL_HOST)) {
      this._hosts.set(LOCAL_HOST, { name: LOCAL_HOST, state: 'up', error: null });
    }
    this._hostList = orderHosts(this._hosts.values());
  }

  private _setConnection(state: ConnectionState): void {
    if (state !== this._connection) {
      this._connection = state;
      this._connectionChanged.emit(state);
      this._changed.emit();
    }
  }

  private _fetchHost?: () => Promise<IHostReport>;
  private _stream: ReconnectingSocket<StatusMessage>;
  private _setTimeout: (fn: () => void, ms: number) => unknown;
  private _clearTimeout: (handle: unknown) => void;
  private _services = new Map<string, IService>();
  private _episodes = new Set<string>();
  private _quiet = new Set<string>();
  private _sorted: IService[] = [];
  private _connection: ConnectionState = 'closed';
  private _managerReachable: boolean | null = null;
  private _managerMessage = '';
  private _host: IHostReport | null = null;
  private _hosts = new Map<string, IHostState>([[LOCAL_HOST, { name: LOCAL_HOST, state: 'up', error: null }]]);
  private _hostList: IHostState[] = [...this._hosts.values()];
  private _journalRecheck: unknown = null;
  private _ready = false;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
  private _serviceFailed = new Signal<this, IService>(this);
  private _connectionChanged = new Signal<this, ConnectionState>(this);
}
