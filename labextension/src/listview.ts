/**
 * What the sidebar shows of many services (pure): filter by text, host, state, kind
 * and environment; sort by attention (failed and crash-looping first), name,
 * uptime, restarts, memory, last exit or next run; and the window of rows a
 * scrolled list renders. No React here, so jest covers it.
 */
import { compareHosts, hostOf } from './hosts';
import { displayState } from './model';
import type { DisplayState, IService, Kind } from './tokens';

export type SortKey = 'attention' | 'name' | 'uptime' | 'restarts' | 'memory' | 'lastExit' | 'nextRun';
export type StateFilter = 'all' | 'attention' | DisplayState;

export interface IListQuery {
  text: string;
  state: StateFilter;
  kind: 'all' | Kind;
  env: string; // 'all' or an env name
  /** 'all' or a host name (`local` for this server's own). */
  host: string;
  sort: SortKey;
  desc: boolean;
}

export const DEFAULT_QUERY: IListQuery = {
  text: '',
  state: 'all',
  kind: 'all',
  env: 'all',
  host: 'all',
  sort: 'attention',
  desc: false
};

/** Restarts in a row that make a running service "crash-looping". */
export const CRASH_LOOP_RESTARTS = 3;

/** Waiting to be restarted by systemd, or restarted at least CRASH_LOOP_RESTARTS times and not stopped. */
export function isCrashLooping(service: IService): boolean {
  const s = service.status;
  if (s.sub_state === 'auto-restart') {
    return true;
  }
  const state = displayState(service);
  return (s.n_restarts ?? 0) >= CRASH_LOOP_RESTARTS && (state === 'running' || state === 'starting');
}

/** Running, but an edit changed what it runs with after the process started. */
export function restartNeeded(service: IService): boolean {
  const state = displayState(service);
  if ((state !== 'running' && state !== 'starting') || !service.unit_changed) {
    return false;
  }
  const started = Date.parse(service.status.active_enter_timestamp ?? '');
  return !Number.isNaN(started) && service.unit_changed * 1000 > started;
}

/** 0 failed, 1 crash-looping, 2 unhealthy, 3 the rest. */
export function attention(service: IService): number {
  const state = displayState(service);
  if (state === 'failed') {
    return 0;
  }
  if (isCrashLooping(service)) {
    return 1;
  }
  if (service.status.health?.state === 'unhealthy') {
    return 2;
  }
  return 3;
}

export function envOf(service: IService): string {
  return service.resolved.env_name || service.spec.env;
}

/** Seconds since it became active (running or starting), else null. */
export function uptime(service: IService, now: number): number | null {
  const state = displayState(service);
  if (state !== 'running' && state !== 'starting') {
    return null;
  }
  const t = Date.parse(service.status.active_enter_timestamp ?? '');
  return Number.isNaN(t) ? null : Math.max(0, (now - t) / 1000);
}

/** When its process last ended (the time it went inactive), in ms since the epoch, else null. */
export function lastExitTime(service: IService): number | null {
  const t = Date.parse(service.status.inactive_enter_timestamp ?? '');
  return Number.isNaN(t) || t <= 0 ? null : t;
}

/** "exit 3", "killed (signal 9)", "exit 0"; '' when it never ended. */
export function lastExitText(service: IService): string {
  const s = service.status;
  if (lastExitTime(service) === null || s.exec_main_status === null || s.exec_main_status === undefined) {
    return '';
  }
  // exec_main_code: 1 exited, 2 killed, 3 dumped (CLD_* of waitid).
  if (s.exec_main_code === 2 || s.exec_main_code === 3) {
    return `signal ${s.exec_main_status}`;
  }
  return `exit ${s.exec_main_status}`;
}

export function nextRunTime(service: IService): number | null {
  const t = Date.parse(service.status.schedule?.next_run ?? '');
  return Number.isNaN(t) ? null : t;
}

function matchesText(service: IService, needle: string): boolean {
  if (!needle) {
    return true;
  }
  const spec = service.spec;
  const hay = [
    service.name,
    spec.description ?? '',
    spec.path ?? '',
    (spec.argv ?? []).join(' '),
    envOf(service),
    spec.kind,
    service.host ?? ''
  ]
    .join('\n')
    .toLowerCase();
  return needle
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every(word => hay.includes(word));
}

export function matches(service: IService, q: IListQuery): boolean {
  if (q.host !== 'all' && hostOf(service) !== q.host) {
    return false;
  }
  if (q.kind !== 'all' && service.spec.kind !== q.kind) {
    return false;
  }
  if (q.env !== 'all' && envOf(service) !== q.env) {
    return false;
  }
  if (q.state === 'attention') {
    if (attention(service) > 2) {
      return false;
    }
  } else if (q.state !== 'all' && displayState(service) !== q.state) {
    return false;
  }
  return matchesText(service, q.text.trim());
}

/** null sorts last whatever the direction. */
function byNumber(a: number | null, b: number | null, desc: boolean): number {
  if (a === null || b === null) {
    return a === b ? 0 : a === null ? 1 : -1;
  }
  return desc ? b - a : a - b;
}

export function compareServices(a: IService, b: IService, q: IListQuery, now: number): number {
  let c = 0;
  switch (q.sort) {
    case 'attention':
      c = attention(a) - attention(b);
      if (q.desc) {
        c = -c;
      }
      break;
    case 'name':
      break;
    case 'uptime':
      c = byNumber(uptime(a, now), uptime(b, now), q.desc);
      break;
    case 'restarts':
      c = byNumber(a.status.n_restarts ?? 0, b.status.n_restarts ?? 0, !q.desc);
      break;
    case 'memory':
      c = byNumber(a.status.memory_current ?? null, b.status.memory_current ?? null, !q.desc);
      break;
    case 'lastExit':
      c = byNumber(lastExitTime(a), lastExitTime(b), !q.desc);
      break;
    case 'nextRun':
      c = byNumber(nextRunTime(a), nextRunTime(b), q.desc);
      break;
  }
  if (c !== 0) {
    return c;
  }
  let byName = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  if (byName === 0) {
    byName = compareHosts(hostOf(a), hostOf(b));
  }
  return q.sort === 'name' && q.desc ? -byName : byName;
}

/** The services to show, in order. */
export function visibleServices(services: ReadonlyArray<IService>, q: IListQuery, now: number): IService[] {
  return services.filter(s => matches(s, q)).sort((a, b) => compareServices(a, b, q, now));
}

/** The environments and kinds present, for the filter menus. */
export function facets(services: ReadonlyArray<IService>): { envs: string[]; kinds: Kind[] } {
  const envs = new Set<string>();
  const kinds = new Set<Kind>();
  for (const s of services) {
    envs.add(envOf(s));
    kinds.add(s.spec.kind);
  }
  return { envs: [...envs].sort(), kinds: [...kinds].sort() };
}

/** [first, last) rows to render for a fixed row height, with `overscan` rows either side. */
export function windowRange(
  count: number,
  rowHeight: number,
  scrollTop: number,
  viewport: number,
  overscan = 8
): [number, number] {
  if (count <= 0 || rowHeight <= 0) {
    return [0, 0];
  }
  const first = Math.min(count, Math.max(0, Math.floor(scrollTop / rowHeight) - overscan));
  const last = Math.min(count, Math.ceil((scrollTop + Math.max(viewport, rowHeight)) / rowHeight) + overscan);
  return [first, Math.max(first, last)];
}

/** The next focused row for a navigation key, or null when the key is not one. */
export function moveFocus(key: string, index: number, count: number, page: number): number | null {
  if (count === 0) {
    return null;
  }
  const clamp = (i: number) => Math.max(0, Math.min(count - 1, i));
  switch (key) {
    case 'ArrowDown':
    case 'j':
      return clamp(index + 1);
    case 'ArrowUp':
    case 'k':
      return clamp(index - 1);
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    case 'PageDown':
      return clamp(index + page);
    case 'PageUp':
      return clamp(index - page);
    default:
      return null;
  }
}
