/**
 * The one reconnecting WebSocket of the extension (status stream, log
 * follow): JSON messages in, a new socket after a close, waiting a delay that
 * doubles from RECONNECT_INITIAL_MS up to RECONNECT_MAX_MS.
 */
import type { IDisposable } from '@lumino/disposable';

import type { ISocketLike } from './tokens';

/** The first wait before reconnecting, in ms; it doubles after each failed attempt. */
export const RECONNECT_INITIAL_MS = 500;
/** The longest wait before reconnecting, in ms. */
export const RECONNECT_MAX_MS = 30000;

export interface IReconnectingSocketOptions<M> {
  /** Opens a new socket (called again on every reconnect, so it may build a fresh query); may throw. */
  open: () => ISocketLike;
  /** One parsed message; a frame that is not JSON is dropped. */
  onMessage: (message: M) => void;
  /** The socket's open event. */
  onOpen?: () => void;
  /** The socket closed (or could not be opened); the next one opens after `delay` ms. */
  onLost?: (delay: number) => void;
  initialDelay?: number;
  maxDelay?: number;
  /** Timer functions, replaceable in tests. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

export class ReconnectingSocket<M> implements IDisposable {
  constructor(options: IReconnectingSocketOptions<M>) {
    this._options = options;
    this._initialDelay = options.initialDelay ?? RECONNECT_INITIAL_MS;
    this._maxDelay = options.maxDelay ?? RECONNECT_MAX_MS;
    this._delay = this._initialDelay;
    this._setTimeout = options.setTimeout ?? ((fn, ms) => window.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? (handle => window.clearTimeout(handle as number));
  }

  /** The wait before the next reconnect attempt, in ms. */
  get delay(): number {
    return this._delay;
  }

  /** A socket is open or opening, or a reconnect is due. */
  get active(): boolean {
    return this._socket !== null || this._timer !== null;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Back to the first delay (the connection proved good). */
  resetDelay(): void {
    this._delay = this._initialDelay;
  }

  /** Close any socket or pending reconnect, and open a new socket now. */
  open(): void {
    this.close();
    if (this._disposed) {
      return;
    }
    let socket: ISocketLike;
    try {
      socket = this._options.open();
    } catch {
      this._lost();
      return;
    }
    this._socket = socket;
    socket.onopen = () => this._options.onOpen?.();
    socket.onmessage = ev => {
      let message: M;
      try {
        message = JSON.parse(String(ev.data)) as M;
      } catch {
        return;
      }
      this._options.onMessage(message);
    };
    socket.onerror = () => {
      // onclose follows
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
        this._lost();
      }
    };
  }

  /** Close the socket and cancel a pending reconnect; nothing reopens until open(). */
  close(): void {
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

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.close();
  }

  private _lost(): void {
    if (this._disposed) {
      return;
    }
    const delay = this._delay;
    this._delay = Math.min(this._delay * 2, this._maxDelay);
    this._timer = this._setTimeout(() => {
      this._timer = null;
      this.open();
    }, delay);
    this._options.onLost?.(delay);
  }

  private _options: IReconnectingSocketOptions<M>;
  private _initialDelay: number;
  private _maxDelay: number;
  private _delay: number;
  private _setTimeout: (fn: () => void, ms: number) => unknown;
  private _clearTimeout: (handle: unknown) => void;
  private _timer: unknown = null;
  private _socket: ISocketLike | null = null;
  private _disposed = false;
}
