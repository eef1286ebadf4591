/** The reconnecting socket both live views use (status stream, log follow). */
import { ReconnectingSocket, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS } from '../socket';
import { Clock, FakeSocket } from './fakes';

function setup(failOpen = () => false) {
  const sockets: FakeSocket[] = [];
  const messages: unknown[] = [];
  const lost: number[] = [];
  const clock = new Clock();
  const socket = new ReconnectingSocket<{ n: number }>({
    open: () => {
      if (failOpen()) {
        throw new Error('no socket');
      }
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    onMessage: m => messages.push(m),
    onLost: delay => lost.push(delay),
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout
  });
  return { socket, sockets, messages, lost, clock };
}

describe('ReconnectingSocket', () => {
  it('waits twice as long after each loss, up to the maximum, and from the start again after resetDelay', () => {
    const { socket, sockets, lost, clock } = setup();
    socket.open();
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      sockets[sockets.length - 1].drop();
      waits.push(...clock.runAll());
    }
    expect(waits).toEqual(lost);
    expect(waits[0]).toBe(RECONNECT_INITIAL_MS);
    expect(waits[1]).toBe(2 * RECONNECT_INITIAL_MS);
    expect(Math.max(...waits)).toBe(RECONNECT_MAX_MS);
    expect(sockets).toHaveLength(9);
    socket.resetDelay();
    expect(socket.delay).toBe(RECONNECT_INITIAL_MS);
  });

  it('passes JSON messages on and drops frames that are not JSON', () => {
    const { socket, sockets, messages } = setup();
    socket.open();
    sockets[0].onmessage?.({ data: '{not json' });
    sockets[0].send({ n: 1 });
    expect(messages).toEqual([{ n: 1 }]);
  });

  it('retries when a socket cannot even be opened', () => {
    let fail = true;
    const { socket, sockets, lost, clock } = setup(() => fail);
    socket.open();
    expect(sockets).toHaveLength(0);
    expect(lost).toEqual([RECONNECT_INITIAL_MS]);
    fail = false;
    clock.runAll();
    expect(sockets).toHaveLength(1);
  });

  it('close() ends the socket and cancels a pending reconnect; dispose() keeps it closed', () => {
    const { socket, sockets, clock } = setup();
    socket.open();
    sockets[0].drop();
    expect(socket.active).toBe(true);
    socket.close();
    expect(socket.active).toBe(false);
    expect(clock.runAll()).toEqual([]);
    socket.open();
    expect(sockets).toHaveLength(2);
    socket.dispose();
    expect(sockets[1].closed).toBe(true);
    socket.open();
    expect(sockets).toHaveLength(2);
  });
});
