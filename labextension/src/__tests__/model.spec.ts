/** The model and the log follower, fed with fake WebSocket messages. */
import { displayState, ServicesModel } from '../model';
import { parseAnsi } from '../ansi';
import { findMatches, LogBuffer, LogFollower } from '../logs';
import { RowLayout } from '../rowlayout';
import { envForPrefix, parsePythonString, prefixFromArgv } from '../kernelenv';
import { joinArgs, splitArgs } from '../format';
import type { IEnvironment, ILogEntry, ILogPage, IService, StatusMessage } from '../tokens';
import { Clock, FakeSocket, hostReport, JOURNAL_OK } from './fakes';

function service(name: string, active: string, extra: Partial<IService['status']> = {}, schedule?: string): IService {
  return {
    name,
    unit: `${name}.service`,
    spec: { name, kind: 'script', env: 'ml', path: 'a.py', schedule: schedule ?? null },
    resolved: { env_name: 'ml' },
    status: {
      load_state: 'loaded',
      active_state: active,
      sub_state: active === 'active' ? 'running' : 'dead',
      result: active === 'failed' ? 'exit-code' : 'success',
      unit_file_state: 'disabled',
      main_pid: active === 'active' ? 42 : null,
      // as systemd: a running process has no exit yet (0/0); an ended one exited (CLD_EXITED = 1) with its status
      exec_main_code: active === 'active' || active === 'activating' ? 0 : 1,
      exec_main_status: active === 'failed' ? 1 : 0,
      n_restarts: 0,
      memory_current: null,
      cpu_usage_nsec: null,
      ...extra
    }
  };
}

function setup() {
  const sockets: FakeSocket[] = [];
  const clock = new Clock();
  const model = new ServicesModel({
    connect: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    initialDelay: 100,
    maxDelay: 800,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout
  });
  model.start();
  const failed: string[] = [];
  model.serviceFailed.connect((_, service) => failed.push(service.name));
  return { model, sockets, clock, failed };
}

/** A model whose stream opened with this snapshot. */
function connected(services: IService[]) {
  const it = setup();
  it.sockets[0].open();
  it.sockets[0].send({ type: 'snapshot', services });
  return it;
}

describe('ServicesModel', () => {
  it('asks for the host report again when a service changes state while logs are not readable', async () => {
    const sockets: FakeSocket[] = [];
    const clock = new Clock();
    const reports = [false, true];
    let fetched = 0;
    const model = new ServicesModel({
      connect: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      fetchHost: async () => {
        const readable = reports[Math.min(fetched++, reports.length - 1)];
        return hostReport({
          readable,
          state: readable ? 'ok' : 'runtime-journal',
          message: readable ? 'ok' : 'journald is writing its volatile runtime journal (/run/log/journal/x)',
          path: '/run/log/journal/x',
          fix: readable ? null : 'repair'
        });
      },
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout
    });
    model.start();
    await Promise.resolve();
    await Promise.resolve();
    expect(fetched).toBe(1);
    expect(model.host?.journal.readable).toBe(false);
    sockets[0].open();
    sockets[0].send({ type: 'snapshot', services: [service('a', 'inactive')] });
    sockets[0].send({ type: 'status', name: 'a', status: service('a', 'active').status });
    sockets[0].send({ type: 'status', name: 'a', status: service('a', 'active').status });
    expect(clock.pending.map(t => t.ms)).toEqual([3000]); // one re-check, however many pushes
    clock.runAll();
    await Promise.resolve();
    await Promise.resolve();
    expect(fetched).toBe(2);
    expect(model.host?.journal.readable).toBe(true);
    sockets[0].send({ type: 'status', name: 'a', status: service('a', 'inactive').status });
    expect(clock.pending).toEqual([]); // readable now: no more re-checks
  });

  it('takes the snapshot, then applies deltas', () => {
    const { model, sockets } = setup();
    let changes = 0;
    model.changed.connect(() => changes++);
    sockets[0].open();
    expect(model.connection).toBe('open');
    sockets[0].send({ type: 'snapshot', services: [service('b', 'inactive'), service('a', 'active')] });
    expect(model.services.map(s => s.name)).toEqual(['a', 'b']);
    expect(model.ready).toBe(true);
    expect(model.managerReachable).toBe(true);

    sockets[0].send({ type: 'service', service: service('b', 'activating') });
    expect(displayState(model.get('b')!)).toBe('starting');
    sockets[0].send({ type: 'service', service: service('c', 'active') });
    expect(model.services).toHaveLength(3);
    sockets[0].send({ type: 'removed', name: 'a' });
    expect(model.get('a')).toBeUndefined();
    expect(model.counts().running).toBe(1);
    expect(model.counts().starting).toBe(1);
    expect(changes).toBeGreaterThanOrEqual(5);
  });

  it('applies quick status pushes, then the full object, signalling a failure once', () => {
    const { model, sockets, failed } = connected([service('a', 'active')]);
    sockets[0].send({ type: 'status', name: 'a', status: service('a', 'failed').status });
    expect(displayState(model.get('a')!)).toBe('failed');
    expect(model.get('a')!.spec.path).toBe('a.py');
    sockets[0].send({ type: 'service', service: service('a', 'failed') });
    sockets[0].send({ type: 'status', name: 'unknown', status: service('x', 'failed').status });
    expect(model.get('unknown')).toBeUndefined();
    expect(failed).toEqual(['a']);
  });

  it('knows a service the API created before its push arrives, without overriding pushes', () => {
    const { model, sockets } = setup();
    sockets[0].open();
    sockets[0].send({ type: 'snapshot', services: [] });
    model.ensure(service('new', 'inactive'));
    expect(model.get('new')).toBeDefined();
    sockets[0].send({ type: 'service', service: service('new', 'active') });
    model.ensure(service('new', 'inactive'));
    expect(displayState(model.get('new')!)).toBe('running');
  });

  it('merges metrics into the status without touching the rest', () => {
    const { model, sockets } = setup();
    sockets[0].open();
    sockets[0].send({ type: 'snapshot', services: [service('a', 'active')] });
    sockets[0].send({
      type: 'metrics',
      services: { a: { memory_current: 1024, cpu_usage_nsec: 5e9 }, ghost: { memory_current: 1, cpu_usage_nsec: 1 } }
    });
    expect(model.get('a')!.status.memory_current).toBe(1024);
    expect(model.get('a')!.status.main_pid).toBe(42);
    expect(model.get('ghost')).toBeUndefined();
  });

  it('signals a transition to failed once, not services already failed at the first snapshot', () => {
    const { model, sockets, failed } = connected([service('old', 'failed'), service('a', 'active')]);
    expect(failed).toEqual([]);
    sockets[0].send({ type: 'service', service: service('a', 'failed') });
    sockets[0].send({ type: 'service', service: service('a', 'failed') });
    expect(failed).toEqual(['a']);
    expect(model.counts().failed).toBe(2);
  });

  it('notifies once per failure episode: a crash loop or a failing schedule is one notification', () => {
    const { model, sockets, failed } = connected([service('loop', 'active'), service('nb', 'inactive', {}, 'hourly')]);
    for (let i = 1; i <= 9; i++) {
      sockets[0].send({ type: 'service', service: service('loop', 'failed', { n_restarts: i }) });
      sockets[0].send({
        type: 'service',
        service: service('loop', 'activating', { n_restarts: i, result: 'exit-code' })
      });
      sockets[0].send({ type: 'service', service: service('loop', 'active', { n_restarts: i, result: 'exit-code' }) });
    }
    for (let i = 0; i < 5; i++) {
      sockets[0].send({ type: 'service', service: service('nb', 'active', { result: 'exit-code' }, 'hourly') });
      sockets[0].send({ type: 'service', service: service('nb', 'failed', {}, 'hourly') });
    }
    expect(failed).toEqual(['loop', 'nb']);
    // a clean end closes the episode; the next failure is news
    sockets[0].send({ type: 'service', service: service('nb', 'inactive', {}, 'hourly') });
    sockets[0].send({ type: 'service', service: service('nb', 'failed', {}, 'hourly') });
    expect(failed).toEqual(['loop', 'nb', 'nb']);
    // so is a start the user asks for
    model.userAction('loop', 'reset-and-start');
    sockets[0].send({ type: 'service', service: service('loop', 'active') });
    sockets[0].send({ type: 'service', service: service('loop', 'failed') });
    expect(failed).toEqual(['loop', 'nb', 'nb', 'loop']);
  });

  it('raises nothing for a stop or delete the user asked for, and flags crash loops early', () => {
    const { model, sockets, failed } = connected([
      service('a', 'active'),
      service('b', 'active'),
      service('c', 'active')
    ]);
    model.userAction('a', 'stop');
    sockets[0].send({ type: 'service', service: service('a', 'failed', { result: 'watchdog' }) });
    model.userAction('b', 'delete');
    sockets[0].send({ type: 'service', service: service('b', 'deactivating') });
    sockets[0].send({ type: 'removed', name: 'b' });
    expect(failed).toEqual([]);
    // after the stop is done, a later failure is news again
    sockets[0].send({ type: 'service', service: service('a', 'active') });
    sockets[0].send({ type: 'service', service: service('a', 'failed') });
    expect(failed).toEqual(['a']);
    sockets[0].send({ type: 'service', service: service('c', 'active', { n_restarts: 3, crash_looping: true }) });
    sockets[0].send({ type: 'service', service: service('c', 'failed', { n_restarts: 5, start_limit_hit: true }) });
    expect(failed).toEqual(['a', 'c']);
  });

  it('reconnects with a doubling back-off and diffs the new snapshot', () => {
    const { model, sockets, clock, failed } = connected([service('a', 'active')]);
    sockets[0].drop();
    expect(model.connection).toBe('closed');
    expect(clock.runAll()).toEqual([100]);
    sockets[1].drop();
    expect(clock.runAll()).toEqual([200]);
    sockets[2].drop();
    expect(clock.runAll()).toEqual([400]);
    sockets[3].drop();
    expect(clock.runAll()).toEqual([800]);
    sockets[4].drop();
    expect(clock.runAll()).toEqual([800]);
    sockets[5].open();
    expect(model.reconnectDelay).toBe(100);
    // The service crashed while we were away: the fresh snapshot tells, and it is signalled.
    sockets[5].send({ type: 'snapshot', services: [service('a', 'failed')] });
    expect(failed).toEqual(['a']);
  });

  it('reports an unreachable manager and recovers with the next snapshot', () => {
    const { model, sockets } = setup();
    sockets[0].open();
    sockets[0].send({ type: 'manager', reachable: false, message: 'The connection was lost.' } as StatusMessage);
    expect(model.managerReachable).toBe(false);
    expect(model.managerMessage).toContain('lost');
    sockets[0].send({ type: 'snapshot', services: [] });
    expect(model.managerReachable).toBe(true);
  });

  it('ignores garbage and stops on dispose', () => {
    const { model, sockets, clock } = setup();
    sockets[0].open();
    sockets[0].onmessage?.({ data: 'not json' });
    expect(model.services).toHaveLength(0);
    model.dispose();
    expect(sockets[0].closed).toBe(true);
    expect(clock.pending).toHaveLength(0);
  });

  it('folds states for display, scheduled included', () => {
    expect(displayState(service('a', 'deactivating'))).toBe('stopping');
    expect(displayState(service('a', 'inactive'))).toBe('stopped');
    expect(
      displayState(
        service('a', 'inactive', { schedule: { timer_state: 'active', next_run: '2030-01-01T00:00:00Z' } }, 'daily')
      )
    ).toBe('scheduled');
    expect(displayState(service('a', 'active', { schedule: { timer_state: 'active' } }, 'daily'))).toBe('running');
  });
});

function entry(i: number, message = `line ${i}`): ILogEntry {
  return {
    cursor: `c${i}`,
    realtime: new Date(1e12 + i).toISOString(),
    realtime_usec: (1e12 + i) * 1000,
    priority: 6,
    pid: 1,
    identifier: 'python',
    source: 'service',
    message
  };
}

describe('LogFollower', () => {
  function page(entries: ILogEntry[]): ILogPage {
    return {
      name: 'a',
      unit: 'a.service',
      entries,
      first_cursor: entries[0]?.cursor ?? null,
      last_cursor: entries[entries.length - 1]?.cursor ?? null,
      more_before: false,
      more_after: false,
      scanned: entries.length,
      scan_limited: false,
      journal: JOURNAL_OK
    };
  }

  it('loads history, follows from its last cursor, and resumes by cursor after a drop', async () => {
    const sockets: FakeSocket[] = [];
    const clock = new Clock();
    const follower = new LogFollower({
      name: 'a',
      source: {
        logs: async () => page([entry(1), entry(2)]),
        openFollow: (_name, query) => {
          const s = new FakeSocket(query);
          sockets.push(s);
          return s;
        }
      },
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout
    });
    await follower.load();
    expect(follower.buffer.length).toBe(2);
    expect(sockets[0].query.cursor).toBe('c2');
    sockets[0].send({ type: 'hello', name: 'a', unit: 'a.service', journal: JOURNAL_OK });
    expect(follower.followState).toBe('live');
    sockets[0].send({ type: 'entries', entries: [entry(3), entry(2)], cursor: 'c3' });
    expect(follower.buffer.rows.map(r => r.cursor)).toEqual(['c1', 'c2', 'c3']);
    sockets[0].drop();
    expect(follower.followState).toBe('reconnecting');
    clock.runAll();
    expect(sockets[1].query.cursor).toBe('c3');
    sockets[1].send({ type: 'dropped', count: 7, after: 'c3', until: 'c10', message: '7 entries not sent' });
    expect(follower.buffer.rows[3].dropped).toBe(7);
    expect(follower.lastCursor).toBe('c10');
    follower.setFollow(false);
    expect(sockets[1].closed).toBe(true);
    expect(follower.followState).toBe('off');
    follower.dispose();
  });
});

describe('log helpers', () => {
  it('keeps the buffer bounded and free of duplicates', () => {
    const buffer = new LogBuffer(5);
    buffer.append([1, 2, 3, 4].map(i => entry(i)));
    buffer.append([4, 5, 6, 7].map(i => entry(i)));
    expect(buffer.rows.map(r => r.cursor)).toEqual(['c3', 'c4', 'c5', 'c6', 'c7']);
    expect(buffer.trimmed).toBe(2);
  });

  it('parses ANSI colours', () => {
    expect(parseAnsi('a \x1b[31mred\x1b[0m b \x1b[1;92mbright\x1b[m')).toEqual([
      { text: 'a ' },
      { text: 'red', fg: 1 },
      { text: ' b ' },
      { text: 'bright', bold: true, fg: 10 }
    ]);
    expect(parseAnsi('\x1b[2Kclean')).toEqual([{ text: 'clean' }]);
  });

  it('finds matches case-insensitively unless the needle has capitals', () => {
    const rows = [entry(1, 'Error here'), entry(2, 'error there'), entry(3, 'fine')];
    expect(findMatches(rows, 'error')).toEqual([0, 1]);
    expect(findMatches(rows, 'Error')).toEqual([0]);
  });

  it('windows 100 000 rows with a binary search', () => {
    const heights = new Float64Array(100000).fill(18);
    heights[10] = 36;
    const layout = new RowLayout(heights);
    expect(layout.total).toBe(100001 * 18);
    expect(layout.indexAt(0)).toBe(0);
    expect(layout.indexAt(18 * 10 + 20)).toBe(10);
    expect(layout.indexAt(18 * 12)).toBe(11);
    const [first, last] = layout.range(18 * 50000, 540, 10);
    expect(last - first).toBeLessThan(60);
  });
});

describe('kernel environment and arguments', () => {
  const envs: IEnvironment[] = [
    {
      name: 'ml',
      prefix: '/opt/conda/envs/ml',
      python: null,
      python_version: '3.11',
      has_ipykernel: true,
      root: '/opt/conda',
      is_root: false,
      kind: 'conda',
      is_server: false,
      label: 'ml'
    }
  ];
  it('maps a prefix to an env name, or keeps the prefix', () => {
    expect(envForPrefix('/opt/conda/envs/ml/', envs)).toBe('ml');
    expect(envForPrefix('/elsewhere/env', envs)).toBe('/elsewhere/env');
  });
  it('reads prefixes from a repr and a kernelspec argv', () => {
    expect(parsePythonString("'/opt/conda/envs/ml'")).toBe('/opt/conda/envs/ml');
    expect(prefixFromArgv(['/opt/conda/envs/ml/bin/python3.11', '-m', 'ipykernel_launcher'])).toBe(
      '/opt/conda/envs/ml'
    );
    expect(prefixFromArgv(['python', '-m', 'ipykernel_launcher'])).toBeNull();
  });
  it('splits and joins arguments like a shell', () => {
    expect(splitArgs(`--port 8080 "a b" 'c d' e\\ f`)).toEqual(['--port', '8080', 'a b', 'c d', 'e f']);
    const args = ['x', 'a b', "it's", ''];
    expect(splitArgs(joinArgs(args))).toEqual(args);
  });
});
