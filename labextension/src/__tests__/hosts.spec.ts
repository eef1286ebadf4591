/** Services of several hosts (issue 15): the model keyed by (host, name), host messages, stale, the host filter. */
import { ServerConnection } from '@jupyterlab/services';

import { CondaSvcAPI } from '../api';
import { hostErrorParts, hostOf, keyOf, serviceKey, serviceLabel, staleReason } from '../hosts';
import { DEFAULT_QUERY, visibleServices } from '../listview';
import { LogFollower } from '../logs';
import { ServicesModel } from '../model';
import type { IHostState, ILogEntry, IService, StatusMessage } from '../tokens';
import { Clock, FakeSocket, JOURNAL_OK } from './fakes';

function service(name: string, host: string | undefined, active = 'inactive', extra: Partial<IService> = {}): IService {
  return {
    name,
    unit: `${name}.service`,
    spec: { name, kind: 'script', env: 'ml', path: 'a.py', schedule: null },
    resolved: { env_name: 'ml' },
    status: {
      load_state: 'loaded',
      active_state: active,
      sub_state: active === 'active' ? 'running' : active === 'failed' ? 'failed' : 'dead',
      result: active === 'failed' ? 'exit-code' : 'success',
      unit_file_state: 'disabled',
      main_pid: active === 'active' ? 42 : null,
      exec_main_code: active === 'active' ? 0 : 1,
      exec_main_status: active === 'failed' ? 1 : 0,
      n_restarts: 0,
      memory_current: null,
      cpu_usage_nsec: null
    },
    ...(host === undefined ? {} : { host }),
    ...extra
  };
}

const DOWN: IHostState = {
  name: 'gpu2',
  state: 'down',
  error: {
    reason: 'HostError',
    kind: 'unreachable',
    message: 'gpu2 cannot be reached: Connection refused. Check that the host is up.',
    fix: 'Check that the host is up.'
  }
};
const UP: IHostState = { name: 'gpu2', state: 'up', error: null };

function connected(message: StatusMessage) {
  const sockets: FakeSocket[] = [];
  const clock = new Clock();
  const model = new ServicesModel({
    connect: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout
  });
  model.start();
  sockets[0].open();
  sockets[0].send(message);
  const failed: string[] = [];
  model.serviceFailed.connect((_, s) => failed.push(serviceLabel(s.name, s.host)));
  return { model, socket: sockets[0], failed };
}

describe('keys', () => {
  it('tell the same name on two hosts apart, and a missing host is local', () => {
    expect(serviceKey('web', 'gpu2')).not.toEqual(serviceKey('web'));
    expect(serviceKey('web')).toEqual(serviceKey('web', 'local'));
    expect(keyOf(service('web', undefined))).toEqual(keyOf(service('web', 'local')));
    expect(hostOf(service('web', undefined))).toBe('local');
    expect(serviceLabel('web', 'local')).toBe('web');
    expect(serviceLabel('web', 'gpu2')).toBe('web @ gpu2');
  });

  it("split a HostError's reason from its fix", () => {
    expect(hostErrorParts(DOWN.error)).toEqual({
      message: 'gpu2 cannot be reached: Connection refused.',
      fix: 'Check that the host is up.'
    });
    expect(hostErrorParts({ message: 'no fix here', fix: null })).toEqual({ message: 'no fix here', fix: '' });
    expect(hostErrorParts(null)).toEqual({ message: '', fix: '' });
  });
});

describe('the model with hosts', () => {
  it('keeps one service per (host, name)', () => {
    const { model } = connected({
      type: 'snapshot',
      services: [service('web', 'local', 'active'), service('web', 'gpu2'), service('etl', undefined)],
      hosts: [{ name: 'local', state: 'up', error: null }, UP]
    });
    expect(model.services.map(s => serviceLabel(s.name, s.host))).toEqual(['etl', 'web', 'web @ gpu2']);
    expect(model.get('web')?.status.active_state).toBe('active');
    expect(model.get('web', 'gpu2')?.status.active_state).toBe('inactive');
    expect(model.get('etl', 'local')).toBeDefined();
    expect(model.get('etl', 'gpu2')).toBeUndefined();
    expect(model.multiHost).toBe(true);
    expect(model.hosts.map(h => h.name)).toEqual(['local', 'gpu2']);
  });

  it('applies status, service, removed and metrics to the host they name', () => {
    const { model, socket } = connected({
      type: 'snapshot',
      services: [service('web', 'local'), service('web', 'gpu2')],
      hosts: [{ name: 'local', state: 'up', error: null }, UP]
    });
    socket.send({ type: 'status', name: 'web', host: 'gpu2', status: { active_state: 'active' } });
    expect(model.get('web', 'gpu2')?.status.active_state).toBe('active');
    expect(model.get('web')?.status.active_state).toBe('inactive');
    // A message without host is about a local service.
    socket.send({ type: 'status', name: 'web', status: { active_state: 'activating' } });
    expect(model.get('web')?.status.active_state).toBe('activating');
    expect(model.get('web', 'gpu2')?.status.active_state).toBe('active');
    socket.send({ type: 'metrics', host: 'gpu2', services: { web: { memory_current: 1024, cpu_usage_nsec: 5 } } });
    expect(model.get('web', 'gpu2')?.status.memory_current).toBe(1024);
    expect(model.get('web')?.status.memory_current).toBeNull();
    // A service message whose service lacks host takes the message's.
    socket.send({ type: 'service', host: 'gpu2', service: service('new', undefined) });
    expect(model.get('new', 'gpu2')).toBeDefined();
    expect(model.get('new')).toBeUndefined();
    socket.send({ type: 'removed', name: 'web', host: 'gpu2' });
    expect(model.get('web', 'gpu2')).toBeUndefined();
    expect(model.get('web')).toBeDefined();
  });

  it('notifies a failure once per (host, name)', () => {
    const { socket, failed } = connected({
      type: 'snapshot',
      services: [service('job', 'local', 'active'), service('job', 'gpu2', 'active')],
      hosts: [{ name: 'local', state: 'up', error: null }, UP]
    });
    socket.send({ type: 'service', service: service('job', 'gpu2', 'failed') });
    socket.send({ type: 'service', service: service('job', 'gpu2', 'failed') });
    expect(failed).toEqual(['job @ gpu2']);
    socket.send({ type: 'service', service: service('job', 'local', 'failed') });
    expect(failed).toEqual(['job @ gpu2', 'job']);
  });

  it("raises no failure for another host's services first seen failed, or re-sent stale", () => {
    const { socket, failed } = connected({
      type: 'snapshot',
      services: [],
      hosts: [
        { name: 'local', state: 'up', error: null },
        { name: 'gpu2', state: 'connecting', error: null }
      ]
    });
    // The host connects: its services arrive one by one, some failed long ago.
    socket.send({ type: 'host', host: UP });
    socket.send({ type: 'service', service: service('old', 'gpu2', 'failed') });
    socket.send({ type: 'service', service: service('ok', 'gpu2', 'active') });
    // It goes down: its services come back stale, whatever their last state.
    socket.send({ type: 'host', host: DOWN });
    socket.send({ type: 'service', service: service('ok', 'gpu2', 'failed', { stale: true, stale_reason: 'down' }) });
    expect(failed).toEqual([]);
    // Back up, fresh: one that failed meanwhile is news; one failed before is not.
    socket.send({ type: 'host', host: UP });
    socket.send({ type: 'service', service: service('old', 'gpu2', 'failed') });
    socket.send({ type: 'service', service: service('ok', 'gpu2', 'active') });
    socket.send({ type: 'service', service: service('ok', 'gpu2', 'failed') });
    expect(failed).toEqual(['ok @ gpu2']);
  });

  it("follows host messages and keeps a down host's services, stale with the reason", () => {
    const { model, socket } = connected({
      type: 'snapshot',
      services: [service('web', 'local'), service('train', 'gpu2', 'active')],
      hosts: [
        { name: 'local', state: 'up', error: null },
        { name: 'gpu2', state: 'connecting', error: null }
      ]
    });
    const train = () => model.get('train', 'gpu2') as IService;
    expect(model.hostState('gpu2')?.state).toBe('connecting');
    expect(staleReason(train(), model.hostState('gpu2'))).toBe('');
    socket.send({ type: 'host', host: DOWN });
    expect(model.hostState('gpu2')).toEqual(DOWN);
    expect(model.services).toHaveLength(2);
    // Down: its services read as stale even before the server re-sends them.
    expect(staleReason(train(), model.hostState('gpu2'))).toBe(DOWN.error?.message);
    socket.send({
      type: 'service',
      service: service('train', 'gpu2', 'active', { stale: true, stale_reason: 'Connection refused' })
    });
    expect(staleReason(train(), model.hostState('gpu2'))).toBe('Connection refused');
    // The local service is not affected.
    expect(staleReason(model.get('web') as IService, model.hostState('local'))).toBe('');
    expect(model.managerReachable).toBe(true);
    // Back up: the server re-sends the service without stale.
    socket.send({ type: 'host', host: UP });
    socket.send({ type: 'service', service: service('train', 'gpu2', 'active') });
    expect(staleReason(train(), model.hostState('gpu2'))).toBe('');
  });

  it("does not take another host's unreachable user manager for the local one", () => {
    const { model, socket } = connected({ type: 'snapshot', services: [], hosts: [UP] });
    socket.send({ type: 'manager', reachable: false, message: 'gpu2: no bus', host: 'gpu2' });
    expect(model.managerReachable).toBe(true);
    socket.send({ type: 'manager', reachable: false, message: 'no bus' });
    expect(model.managerReachable).toBe(false);
  });

  it('has only local, and no host column, for a server without hosts', () => {
    const { model, socket } = connected({ type: 'snapshot', services: [service('web', undefined)] });
    expect(model.hosts.map(h => h.name)).toEqual(['local']);
    expect(model.multiHost).toBe(false);
    // A host message (the server started a mirror) adds the host.
    socket.send({ type: 'host', host: { name: 'gpu2', state: 'connecting', error: null } });
    expect(model.multiHost).toBe(true);
    expect(model.hosts.map(h => h.name)).toEqual(['local', 'gpu2']);
    // A new snapshot without hosts is a server with none again.
    socket.send({ type: 'snapshot', services: [] });
    expect(model.multiHost).toBe(false);
  });
});

describe('the host filter', () => {
  const list = [service('b', 'gpu2'), service('a', 'local'), service('a', 'gpu2'), service('c', undefined)];
  const shown = (over: object) =>
    visibleServices(list, { ...DEFAULT_QUERY, ...over }, 0).map(s => serviceLabel(s.name, s.host));

  it('shows every host by default, a name on two hosts side by side', () => {
    expect(shown({})).toEqual(['a', 'a @ gpu2', 'b @ gpu2', 'c']);
  });

  it('shows one host, a service without host being local', () => {
    expect(shown({ host: 'gpu2' })).toEqual(['a @ gpu2', 'b @ gpu2']);
    expect(shown({ host: 'local' })).toEqual(['a', 'c']);
    expect(shown({ host: 'nosuch' })).toEqual([]);
  });

  it('lets the text filter find a host name', () => {
    expect(shown({ text: 'gpu2' })).toEqual(['a @ gpu2', 'b @ gpu2']);
  });
});

describe('the API of a host', () => {
  const settings = ServerConnection.makeSettings({ baseUrl: 'http://h/a%40b/', wsUrl: 'ws://h/a%40b/' });

  function recorder() {
    const urls: string[] = [];
    // Every request goes through ServerConnection.makeRequest with these settings: record its URL.
    const fetch = async (input: RequestInfo | URL) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      urls.push(url.replace(/[?&]\d+$/, '')); // makeRequest's cache buster

      return new Response('{}', { status: 200 });
    };
    const api = new CondaSvcAPI(ServerConnection.makeSettings({ ...settings, fetch }));
    return { api, urls };
  }

  it('sends ?host= for another host and nothing for local', async () => {
    const { api, urls } = recorder();
    await api.act('web', 'start');
    await api.at('local').runs('web', 5);
    await api.at('gpu2').act('web', 'start');
    await api.at('gpu2').runs('web', 5);
    await api.at('gpu2').environments(true);
    await api.at('gpu2').logs('web', { n: 10 });
    await api.at('gpu2').create({ name: 'x', kind: 'script', env: 'ml', path: 'a.py' } as IService['spec']);
    expect(urls).toEqual([
      'http://h/a%40b/condasvc/api/services/web/start',
      'http://h/a%40b/condasvc/api/services/web/runs?limit=5',
      'http://h/a%40b/condasvc/api/services/web/start?host=gpu2',
      'http://h/a%40b/condasvc/api/services/web/runs?limit=5&host=gpu2',
      'http://h/a%40b/condasvc/api/environments?refresh=1&host=gpu2',
      'http://h/a%40b/condasvc/api/services/web/logs?n=10&format=json&host=gpu2',
      'http://h/a%40b/condasvc/api/services?host=gpu2'
    ]);
    expect(api.at('gpu2')).toBe(api.at('gpu2'));
    expect(api.at('gpu2').at('local').hostName).toBe('local');
  });

  it('asks for every host when listing, one when told', async () => {
    const { api, urls } = recorder();
    await api.services();
    await api.services('gpu2');
    expect(urls).toEqual(['http://h/a%40b/condasvc/api/services', 'http://h/a%40b/condasvc/api/services?host=gpu2']);
  });

  it("opens another host's log follow with ?host=", () => {
    const opened: string[] = [];
    class FakeWS {
      constructor(url: string) {
        opened.push(url);
      }
    }
    const api = new CondaSvcAPI({ ...settings, WebSocket: FakeWS as unknown as typeof WebSocket, token: '' });
    api.at('gpu2').openFollow('web', { n: 5 });
    api.openFollow('web', { n: 5 });
    expect(opened).toEqual([
      'ws://h/a%40b/condasvc/api/services/web/logs/follow?n=5&host=gpu2',
      'ws://h/a%40b/condasvc/api/services/web/logs/follow?n=5'
    ]);
  });
});

describe("another host's log follow", () => {
  const entry = (i: number): ILogEntry => ({
    cursor: `c${i}`,
    realtime: '2026-01-01T00:00:00+00:00',
    realtime_usec: i,
    priority: 6,
    pid: 1,
    identifier: 'x',
    source: 'service',
    message: `line ${i}`
  });

  it('keeps the journal state of its page, says reconnecting while the host is lost, and is live again', async () => {
    const sockets: FakeSocket[] = [];
    const clock = new Clock();
    const follower = new LogFollower({
      name: 'web',
      source: {
        logs: async () => ({
          name: 'web',
          unit: 'web.service',
          entries: [entry(1)],
          first_cursor: 'c1',
          last_cursor: 'c1',
          more_before: false,
          more_after: false,
          scanned: 1,
          scan_limited: false,
          journal: JOURNAL_OK
        }),
        openFollow: (_name, query) => {
          const socket = new FakeSocket(query);
          sockets.push(socket);
          return socket;
        }
      },
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout
    });
    await follower.load();
    sockets[0].send({ type: 'hello', name: 'web', unit: 'web.service', journal: null, host: 'gpu2' });
    expect(follower.journal).toEqual(JOURNAL_OK);
    expect(follower.followState).toBe('live');
    sockets[0].send({ type: 'lost', host: 'gpu2', error: DOWN.error });
    expect(follower.followState).toBe('reconnecting');
    expect(follower.error).toBe(DOWN.error?.message);
    // The server resumed after the last cursor on the same socket: no new socket, the error goes.
    sockets[0].send({ type: 'entries', entries: [entry(2)], cursor: 'c2' });
    expect(sockets).toHaveLength(1);
    expect(follower.followState).toBe('live');
    expect(follower.error).toBe('');
    expect(follower.buffer.rows.map(r => r.cursor)).toEqual(['c1', 'c2']);
    follower.dispose();
  });
});
