/**
 * Issue 11: a scheduled notebook failing on every timer run raises one
 * notification for the episode; a stop or delete the user asked for raises
 * none; many services failing at once make one grouped notification.
 * The model is fed the status stream's messages in the order the server
 * pushes them (a quick "status" at each state change, then the full object).
 */
import { failureToasts } from '../failures';
import { ServicesModel } from '../model';
import type { IService, IServiceStatus, ISocketLike } from '../tokens';

class FakeSocket implements ISocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  close(): void {
    this.onclose = null;
  }
}

const SCHEDULE = '*:*:0/5';

function status(active: string, sub: string, result: string, extra: Partial<IServiceStatus> = {}): IServiceStatus {
  return {
    load_state: 'loaded',
    active_state: active,
    sub_state: sub,
    result,
    unit_file_state: 'disabled',
    main_pid: active === 'active' ? 4242 : null,
    // as systemd: a running process has no exit yet (0/0); an ended one exited (CLD_EXITED = 1) with its status
    exec_main_code: active === 'active' || active === 'activating' ? 0 : 1,
    exec_main_status: result === 'success' ? 0 : 1,
    n_restarts: 0,
    memory_current: null,
    cpu_usage_nsec: null,
    schedule: { armed: true, next_run: '2026-11-30T15:00:05Z', last_run: null },
    start_limit_hit: false,
    crash_looping: false,
    ...extra
  };
}

function notebook(name: string, st: IServiceStatus): IService {
  return {
    name,
    unit: `condasvc-${name}.service`,
    spec: { name, kind: 'notebook', env: 'nb', path: 'fails.ipynb', schedule: SCHEDULE, restart: 'no' },
    resolved: { env_name: 'nb' },
    status: st
  } as IService;
}

function setup(services: IService[]) {
  const socket = new FakeSocket();
  const model = new ServicesModel({ connect: () => socket, setTimeout: () => null, clearTimeout: () => undefined });
  const raised: string[] = [];
  model.serviceFailed.connect((_, s) => raised.push(s.name));
  model.start();
  socket.onopen?.({});
  socket.send({ type: 'snapshot', services });
  /** Push one state the way the server does: the quick status, then the full object. */
  const push = (name: string, st: IServiceStatus) => {
    socket.send({ type: 'status', name, status: st });
    socket.send({ type: 'service', service: notebook(name, st) });
  };
  /** One timer run of a notebook whose cell raises: start, run, ExecStopPost, failed. */
  const failingTimerRun = (name: string) => {
    push(name, status('activating', 'start', 'success'));
    push(name, status('active', 'running', 'success'));
    push(name, status('deactivating', 'stop-post', 'exit-code'));
    push(name, status('failed', 'failed', 'exit-code'));
  };
  return { model, socket, raised, push, failingTimerRun };
}

describe('failure notifications of a scheduled failing notebook', () => {
  it('five failing timer runs are one episode: one notification', () => {
    const { raised, failingTimerRun } = setup([notebook('nb', status('inactive', 'dead', 'success'))]);
    for (let i = 0; i < 5; i++) {
      failingTimerRun('nb');
    }
    expect(raised).toEqual(['nb']);
  });

  it('replays the pushes tests/test_jobs_history.py saw on the real stack: one notification', () => {
    // active_state in the order the status stream pushed it for five failing timer runs (the test prints the
    // result of failed states only; the model reads the result only of an inactive state)
    const seen =
      'inactive/success activating/success active/success deactivating/success failed/exit-code ' +
      'activating/success active/success deactivating/success failed/exit-code ' +
      'activating/success active/success deactivating/success failed/exit-code failed/success ' +
      'activating/success active/success deactivating/success failed/exit-code ' +
      'activating/success active/success deactivating/success failed/exit-code';
    const { raised, push } = setup([notebook('nb', status('inactive', 'dead', 'success'))]);
    for (const pair of seen.split(' ')) {
      const [active, result] = pair.split('/');
      push('nb', status(active, active === 'failed' ? 'failed' : active === 'inactive' ? 'dead' : 'running', result));
    }
    expect(raised).toEqual(['nb']);
  });

  it('also when Jupyter starts with the notebook already failed, or the stream reconnects mid-episode', () => {
    const { socket, raised, failingTimerRun } = setup([notebook('nb', status('failed', 'failed', 'exit-code'))]);
    failingTimerRun('nb');
    failingTimerRun('nb');
    // the first failure seen live is news; the runs after it are the same episode
    expect(raised).toEqual(['nb']);
    socket.send({ type: 'snapshot', services: [notebook('nb', status('active', 'running', 'success'))] });
    failingTimerRun('nb');
    expect(raised).toEqual(['nb']);
  });

  it("a crash loop is one episode through systemd's inactive/success step between restarts", () => {
    // Seen in Lab (Galata): between two automatic restarts the unit passes through inactive with its result
    // reset to success, while the last exit is still the crash's: that is not a clean end.
    const { raised, push } = setup([notebook('loop', status('inactive', 'dead', 'success'))]);
    const crashed = { exec_main_code: 1, exec_main_status: 1 };
    push('loop', status('active', 'running', 'success'));
    push('loop', status('activating', 'auto-restart', 'exit-code', { ...crashed, n_restarts: 2, crash_looping: true }));
    push('loop', status('inactive', 'dead', 'success', { ...crashed, n_restarts: 2, crash_looping: false }));
    push('loop', status('active', 'running', 'success', { ...crashed, n_restarts: 3 }));
    push('loop', status('failed', 'failed', 'start-limit-hit', { ...crashed, n_restarts: 3, start_limit_hit: true }));
    expect(raised).toEqual(['loop']);
  });

  it("a crash loop is one episode when a restart's zeroed exit status is pushed before its new active state", () => {
    // Seen in Lab (Galata, a crasher that lives 0.3 s): the new process's ExecMainCode/Status (0/0, Service
    // interface) can arrive in a push while ActiveState (Unit interface) still says inactive/success.
    const { raised, push } = setup([notebook('loop', status('inactive', 'dead', 'success'))]);
    const crashed = { exec_main_code: 1, exec_main_status: 3 };
    push('loop', status('active', 'running', 'success'));
    push('loop', status('activating', 'auto-restart', 'exit-code', { ...crashed, n_restarts: 1, crash_looping: true }));
    push('loop', status('inactive', 'dead', 'success', { exec_main_code: 0, exec_main_status: 0, n_restarts: 1 }));
    push('loop', status('active', 'running', 'success', { n_restarts: 2 }));
    push('loop', status('failed', 'failed', 'start-limit-hit', { ...crashed, n_restarts: 3, start_limit_hit: true }));
    expect(raised).toEqual(['loop']);
  });

  it('a successful run ends the episode; the next failure is news again', () => {
    const { raised, push, failingTimerRun } = setup([notebook('nb', status('inactive', 'dead', 'success'))]);
    failingTimerRun('nb');
    failingTimerRun('nb');
    push('nb', status('activating', 'start', 'success'));
    push('nb', status('active', 'running', 'success'));
    push('nb', status('inactive', 'dead', 'success'));
    failingTimerRun('nb');
    failingTimerRun('nb');
    expect(raised).toEqual(['nb', 'nb']);
  });

  it('the user acting on it (reset and start) ends the episode', () => {
    const { model, raised, failingTimerRun } = setup([notebook('nb', status('inactive', 'dead', 'success'))]);
    failingTimerRun('nb');
    failingTimerRun('nb');
    model.userAction('nb', 'reset-and-start');
    failingTimerRun('nb');
    failingTimerRun('nb');
    expect(raised).toEqual(['nb', 'nb']);
  });

  it('raises none for a stop or a delete the user asked for', () => {
    const { model, socket, raised, push } = setup([
      notebook('a', status('active', 'running', 'success')),
      notebook('b', status('active', 'running', 'success'))
    ]);
    model.userAction('a', 'stop');
    push('a', status('deactivating', 'stop-sigterm', 'success'));
    push('a', status('failed', 'failed', 'signal')); // a kernel killed by the stop
    model.userAction('b', 'delete');
    push('b', status('deactivating', 'stop-sigterm', 'success'));
    push('b', status('failed', 'failed', 'watchdog'));
    socket.send({ type: 'removed', name: 'b' });
    expect(raised).toEqual([]);
  });

  it('several services failing at once: each signalled once, shown as one grouped notification', () => {
    const names = ['n1', 'n2', 'n3', 'n4'];
    const { model, raised, failingTimerRun } = setup(
      names.map(n => notebook(n, status('inactive', 'dead', 'success')))
    );
    for (let i = 0; i < 5; i++) {
      names.forEach(failingTimerRun);
    }
    expect(raised).toEqual(names);
    const batch = raised.map(n => model.get(n)!);
    expect(failureToasts(batch)).toEqual([{ kind: 'group', names }]);
    // one or two at once keep their own toast (with the service's own recovery action)
    expect(failureToasts(batch.slice(0, 2)).map(t => t.kind)).toEqual(['single', 'single']);
    expect(failureToasts([])).toEqual([]);
  });
});
