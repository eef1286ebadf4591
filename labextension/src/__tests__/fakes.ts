/** Fakes shared by the unit tests: a socket and timers driven by the test. */
import type { IHostReport, IJournalDiagnosis, ISocketLike } from '../tokens';

export const JOURNAL_OK: IJournalDiagnosis = {
  ok: true,
  state: 'ok',
  message: "Your services' logs are in /j.",
  path: '/j',
  storage: 'persistent',
  problems: [],
  fix: null,
  rate_limit: {}
};

/** A host report (GET host): readable logs, no linger, these cgroup controllers; `journal` changes its journal part. */
export function hostReport(journal: Partial<IHostReport['journal']> = {}, controllers: string[] = []): IHostReport {
  return {
    user: 'u',
    manager: { reachable: true },
    linger: { enabled: false },
    journal: {
      persistent: true,
      readable: true,
      state: 'ok',
      message: '',
      path: '',
      fix: null,
      diagnosis: JOURNAL_OK,
      ...journal
    },
    limits: { controllers, memory_enforced: controllers.includes('memory'), cpu_enforced: controllers.includes('cpu') }
  };
}

/** A WebSocket the test opens, feeds and drops. */
export class FakeSocket implements ISocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  constructor(readonly query: Record<string, unknown> = {}) {}
  open(): void {
    this.onopen?.({});
  }
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(): void {
    this.onclose?.({});
  }
  close(): void {
    this.closed = true;
  }
}

/** Timers that run only when the test says so. */
export class Clock {
  pending: { fn: () => void; ms: number }[] = [];
  setTimeout = (fn: () => void, ms: number): unknown => {
    const t = { fn, ms };
    this.pending.push(t);
    return t;
  };
  clearTimeout = (handle: unknown): void => {
    this.pending = this.pending.filter(t => t !== handle);
  };
  runAll(): number[] {
    const due = this.pending;
    this.pending = [];
    due.forEach(t => t.fn());
    return due.map(t => t.ms);
  }
}
