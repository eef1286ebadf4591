/** The sidebar's filter, sort, window and keyboard logic. */
import {
  attention,
  DEFAULT_QUERY,
  facets,
  isCrashLooping,
  lastExitText,
  moveFocus,
  restartNeeded,
  visibleServices,
  windowRange
} from '../listview';
import { servicesOfPath, uniqueName } from '../runfile';
import type { IService, IServiceStatus, Kind } from '../tokens';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

function svc(
  name: string,
  status: Partial<IServiceStatus> = {},
  kind: Kind = 'script',
  env = 'ml',
  extra: Partial<IService['spec']> = {}
): IService {
  return {
    name,
    unit: `${name}.service`,
    spec: { name, kind, env, path: `${name}.py`, ...extra } as IService['spec'],
    resolved: { env_name: env },
    status: {
      load_state: 'loaded',
      active_state: 'inactive',
      sub_state: 'dead',
      result: 'success',
      unit_file_state: 'disabled',
      main_pid: null,
      n_restarts: 0,
      memory_current: null,
      cpu_usage_nsec: null,
      ...status
    }
  };
}

const running = (name: string, up: number, extra: Partial<IServiceStatus> = {}) =>
  svc(name, { active_state: 'active', sub_state: 'running', active_enter_timestamp: ago(up), ...extra });

describe('attention order', () => {
  const list = [
    running('a-ok', 100),
    svc('b-failed', {
      active_state: 'failed',
      result: 'exit-code',
      exec_main_status: 3,
      exec_main_code: 1,
      inactive_enter_timestamp: ago(5)
    }),
    running('c-looping', 10, { n_restarts: 7 }),
    svc('d-restarting', { active_state: 'activating', sub_state: 'auto-restart', n_restarts: 1 }),
    svc('e-stopped')
  ];
  it('puts failed, then crash-looping, first; the rest by name', () => {
    expect(visibleServices(list, DEFAULT_QUERY, NOW).map(s => s.name)).toEqual([
      'b-failed',
      'c-looping',
      'd-restarting',
      'a-ok',
      'e-stopped'
    ]);
    expect(attention(list[0])).toBe(3);
    expect(isCrashLooping(list[2])).toBe(true);
    expect(isCrashLooping(running('x', 1, { n_restarts: 2 }))).toBe(false);
  });
  it('filters by state, kind, env and words of the text', () => {
    const more = [...list, svc('nb-report', {}, 'notebook', 'other', { description: 'Nightly KPI report' })];
    const q = (over: object) => visibleServices(more, { ...DEFAULT_QUERY, ...over }, NOW).map(s => s.name);
    expect(q({ state: 'attention' })).toEqual(['b-failed', 'c-looping', 'd-restarting']);
    expect(q({ state: 'running' })).toEqual(['c-looping', 'a-ok']);
    expect(q({ kind: 'notebook' })).toEqual(['nb-report']);
    expect(q({ env: 'other' })).toEqual(['nb-report']);
    expect(q({ text: 'kpi NIGHTLY' })).toEqual(['nb-report']);
    expect(q({ text: 'nothing-like-it' })).toEqual([]);
    expect(facets(more)).toEqual({ envs: ['ml', 'other'], kinds: ['notebook', 'script'] });
  });
  it('sorts by the columns, missing values last, and reverses', () => {
    const l = [
      running('short', 10, { memory_current: 5, n_restarts: 1 }),
      running('long', 1000, { memory_current: 50 }),
      svc('idle', { inactive_enter_timestamp: ago(60), exec_main_status: 0, exec_main_code: 1 })
    ];
    const q = (sort: string, desc = false) =>
      visibleServices(l, { ...DEFAULT_QUERY, sort, desc } as typeof DEFAULT_QUERY, NOW).map(s => s.name);
    expect(q('uptime')).toEqual(['short', 'long', 'idle']);
    expect(q('uptime', true)).toEqual(['long', 'short', 'idle']);
    expect(q('memory')).toEqual(['long', 'short', 'idle']);
    expect(q('restarts')).toEqual(['short', 'idle', 'long']);
    expect(q('lastExit')).toEqual(['idle', 'long', 'short']);
    expect(q('name', true)).toEqual(['short', 'long', 'idle']);
  });
  it('says how it last ended', () => {
    expect(lastExitText(svc('x', { inactive_enter_timestamp: ago(1), exec_main_status: 3, exec_main_code: 1 }))).toBe(
      'exit 3'
    );
    expect(lastExitText(svc('x', { inactive_enter_timestamp: ago(1), exec_main_status: 9, exec_main_code: 2 }))).toBe(
      'signal 9'
    );
    expect(lastExitText(svc('x'))).toBe('');
  });
});

describe('window and keys', () => {
  it('renders only the rows on screen plus overscan', () => {
    expect(windowRange(500, 74, 0, 740, 8)).toEqual([0, 18]);
    const [first, last] = windowRange(500, 74, 74 * 250, 740, 8);
    expect(first).toBe(242);
    expect(last - first).toBeLessThan(30);
    // scrolled past the end (the filter shrank the list): nothing beyond it
    expect(windowRange(500, 74, 74 * 1000, 740)).toEqual([500, 500]);
    expect(windowRange(500, 74, 74 * 495, 740)[1]).toBe(500);
    expect(windowRange(0, 74, 0, 740)).toEqual([0, 0]);
  });
  it('moves focus with arrows, j/k, Home/End and pages, clamped', () => {
    expect(moveFocus('ArrowDown', 0, 10, 5)).toBe(1);
    expect(moveFocus('k', 0, 10, 5)).toBe(0);
    expect(moveFocus('End', 0, 10, 5)).toBe(9);
    expect(moveFocus('PageDown', 8, 10, 5)).toBe(9);
    expect(moveFocus('x', 0, 10, 5)).toBeNull();
    expect(moveFocus('ArrowDown', 0, 0, 5)).toBeNull();
  });
});

describe('run as service', () => {
  it('finds the services of a file, relative or absolute', () => {
    const list = [
      svc('a', {}, 'notebook', 'ml', { path: 'reports/daily.ipynb' }),
      svc('b', {}, 'notebook', 'ml', { path: '/home/u/reports/daily.ipynb' }),
      svc('c', {}, 'notebook', 'ml', { path: 'reports/other.ipynb' })
    ];
    expect(servicesOfPath(list, 'reports/daily.ipynb', '/home/u').map(s => s.name)).toEqual(['a', 'b']);
    expect(servicesOfPath(list, 'daily.ipynb', '/home/u')).toEqual([]);
  });
  it('picks a free name', () => {
    expect(uniqueName('report', [{ name: 'x' }])).toBe('report');
    expect(uniqueName('report', [{ name: 'report' }, { name: 'report-2' }])).toBe('report-3');
  });
});

describe('restart needed', () => {
  it('is true only for a running service edited after it started', () => {
    const started = (NOW - 60000) / 1000;
    const r = running('r', 60);
    expect(restartNeeded({ ...r, unit_changed: started - 10 })).toBe(false);
    expect(restartNeeded({ ...r, unit_changed: started + 10 })).toBe(true);
    expect(restartNeeded({ ...svc('s'), unit_changed: NOW / 1000 })).toBe(false);
    expect(restartNeeded(r)).toBe(false);
  });
});
