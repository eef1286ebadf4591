/** The words of a service tab's facts (issue 12, item 5): no stale or contradictory text. */
import {
  healthText,
  lastEndedRun,
  lastExitText,
  progressText,
  rememberEnd,
  resourceText,
  sinceIso,
  type IEndFacts,
  type Tr
} from '../statusfacts';
import type { IHostReport, IRun, IService, IServiceStatus } from '../tokens';
import { hostReport } from './fakes';

const __: Tr = (msgid, ...args) => args.reduce<string>((s, a, i) => s.replace(`%${i + 1}`, String(a)), msgid);

function status(extra: Partial<IServiceStatus> = {}): IServiceStatus {
  return {
    load_state: 'loaded',
    active_state: 'active',
    sub_state: 'running',
    result: 'success',
    unit_file_state: 'disabled',
    main_pid: 42,
    n_restarts: 0,
    memory_current: null,
    cpu_usage_nsec: null,
    ...extra
  };
}

/** What systemd reports of a stopped unit it has unloaded: every property zeroed. */
const UNLOADED = status({
  active_state: 'inactive',
  sub_state: 'dead',
  main_pid: null,
  exec_main_code: 0,
  exec_main_status: 0,
  exit_reason: null,
  active_enter_timestamp: null,
  state_change_timestamp: null,
  status_text: null
});

function service(st: IServiceStatus, spec: Partial<IService['spec']> = {}): IService {
  return {
    name: 'web',
    unit: 'condasvc-web.service',
    spec: { name: 'web', kind: 'script', env: 'base', ...spec },
    resolved: {},
    status: st
  } as unknown as IService;
}

const HTTP = { type: 'http' as const, url: 'http://127.0.0.1:8000/health' };

function host(controllers: string[]): IHostReport {
  return hostReport({}, controllers);
}

describe('health', () => {
  const started = '2026-11-30T10:00:00Z';
  const probed = '2026-11-30T10:00:05Z';

  it('is not "healthy · 2 ms" for a stopped service', () => {
    const st = status({
      active_state: 'inactive',
      sub_state: 'dead',
      health: { state: 'healthy', latency_ms: 2, last_probe: probed }
    });
    const text = healthText(service(st, { health_check: HTTP }), __);
    expect(text).toBe('not checked: the service is not running');
    expect(text).not.toMatch(/healthy|ms/);
  });

  it('does not carry an older error when the last probe was healthy', () => {
    const st = status({
      active_enter_timestamp: started,
      health: { state: 'healthy', latency_ms: 2.4, last_probe: probed, last_error: 'connection refused' }
    });
    expect(healthText(service(st, { health_check: HTTP }), __)).toBe('healthy · 2 ms');
  });

  it('shows the error and the count when unhealthy', () => {
    const st = status({
      active_enter_timestamp: started,
      health: { state: 'unhealthy', consecutive_failures: 2, last_probe: probed, last_error: 'connection refused' }
    });
    expect(healthText(service(st, { health_check: HTTP }), __)).toBe(
      'unhealthy · 2 failed in a row · connection refused'
    );
  });

  it('ignores a result an earlier run probed', () => {
    const st = status({
      active_enter_timestamp: started,
      health: { state: 'unhealthy', last_probe: '2026-11-30T09:00:00Z', last_error: 'connection refused' }
    });
    expect(healthText(service(st, { health_check: HTTP }), __)).toBe('no probe yet');
  });

  it('has no row without a health check', () => {
    expect(healthText(service(status()), __)).toBeNull();
  });
});

describe('progress', () => {
  it('does not repeat the health prober', () => {
    const st = status({ status_text: 'healthy (3 ms)', health: { state: 'healthy', latency_ms: 3 } });
    expect(progressText(service(st, { health_check: HTTP }), null, __)).toBeNull();
    const bad = status({ status_text: 'unhealthy: connection refused (1/3)', health: { state: 'unhealthy' } });
    expect(progressText(service(bad, { health_check: HTTP }), null, __)).toBeNull();
  });

  it("shows the program's own words", () => {
    const st = status({ status_text: 'serving 3 clients', health: { state: 'healthy' } });
    expect(progressText(service(st, { health_check: HTTP }), null, __)).toBe('serving 3 clients');
  });

  it("keeps a finished notebook's last words after systemd unloads the unit", () => {
    const done = status({ active_state: 'inactive', sub_state: 'dead', status_text: 'finished: 5 cells in 12.2s' });
    let facts = rememberEnd(null, done, __);
    const nb = service(done, { kind: 'notebook' });
    expect(progressText(nb, facts, __)).toBe('finished: 5 cells in 12.2s');
    facts = rememberEnd(facts, UNLOADED, __);
    expect(progressText(service(UNLOADED, { kind: 'notebook' }), facts, __)).toBe(
      'finished: 5 cells in 12.2s (last run)'
    );
  });

  it('forgets the last words when a new run starts', () => {
    const done = status({ active_state: 'inactive', status_text: 'finished: 5 cells in 12.2s' });
    const facts = rememberEnd(rememberEnd(null, done, __), status({ status_text: null }), __);
    expect(facts.finalText).toBeNull();
    expect(progressText(service(status({ status_text: null }), { kind: 'notebook' }), facts, __)).toBeNull();
  });
});

describe('last exit and since', () => {
  const stopped = status({
    active_state: 'inactive',
    sub_state: 'dead',
    exec_main_code: 2,
    exec_main_status: 15,
    exit_reason: 'killed by SIGTERM.',
    state_change_timestamp: '2026-11-30T10:05:00Z'
  });

  it('survive systemd unloading the stopped unit', () => {
    let facts: IEndFacts | null = rememberEnd(null, stopped, __);
    facts = rememberEnd(facts, UNLOADED, __);
    expect(lastExitText(UNLOADED, facts, null, __)).toBe('killed by SIGTERM.');
    expect(sinceIso(UNLOADED, facts, null)).toBe('2026-11-30T10:05:00Z');
  });

  it('come from the latest run when the tab saw nothing before', () => {
    const run: IRun = {
      id: 'abc',
      trigger: 'manual',
      start: '2026-11-30T10:00:00Z',
      end: '2026-11-30T10:05:00Z',
      duration_sec: 300,
      result: 'exit-code',
      exit_code: 'exited',
      exit_status: 3,
      state: 'failed',
      has_notebook: false
    };
    expect(lastExitText(UNLOADED, null, run, __)).toBe('exited with status 3.');
    expect(sinceIso(UNLOADED, null, run)).toBe('2026-11-30T10:05:00Z');
    expect(lastExitText(UNLOADED, null, { ...run, exit_status: null, signal: 'SIGTERM' }, __)).toBe(
      'killed by SIGTERM.'
    );
    // while the next run goes, the last exit is the newest ended run's
    const current: IRun = {
      ...run,
      id: 'new',
      start: '2026-11-30T11:00:00Z',
      end: null,
      state: 'running',
      result: null,
      exit_status: null
    };
    const running = status({ active_enter_timestamp: '2026-11-30T11:00:00Z', exec_main_code: 0 });
    expect(lastExitText(running, null, lastEndedRun([current, run]), __)).toBe('exited with status 3.');
    expect(sinceIso(running, null, lastEndedRun([current, run]))).toBe('2026-11-30T11:00:00Z');
  });

  it('say "none yet" for a service that never ended, and the start time while running', () => {
    const running = status({ active_enter_timestamp: '2026-11-30T11:00:00Z' });
    expect(lastExitText(running, null, null, __)).toBe('none yet');
    expect(sinceIso(running, rememberEnd(null, stopped, __), null)).toBe('2026-11-30T11:00:00Z');
    // the previous end stays the last exit while the next run is going
    expect(lastExitText(running, rememberEnd(rememberEnd(null, stopped, __), running, __), null, __)).toBe(
      'killed by SIGTERM.'
    );
  });
});

describe('memory and CPU', () => {
  const fmt = (v: number) => `${v} B`;

  it('show the figure when there is one', () => {
    expect(resourceText('memory', 1024, status(), host([]), fmt, __).text).toBe('1024 B');
  });

  it('say why there is none on a host without the controllers', () => {
    const mem = resourceText('memory', null, status(), host([]), fmt, __);
    expect(mem.text).toBe('not measured on this host');
    expect(mem.reason).toMatch(/^no memory controller for user services/);
    const cpu = resourceText('cpu', null, status(), host(['memory']), fmt, __);
    expect(cpu.text).toBe('not measured on this host');
    expect(cpu.reason).toMatch(/^no cpu controller/);
    expect(resourceText('memory', null, status(), host(['memory', 'cpu']), fmt, __).text).toBe(
      'not reported by systemd for this unit'
    );
  });

  it('say "not running" for a stopped service', () => {
    expect(resourceText('memory', null, UNLOADED, host([]), fmt, __).text).toBe('not running');
  });
});
