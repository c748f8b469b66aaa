import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTcpRelay, type TcpRelay } from './tcp-relay';

/** An echo server and a relay in front of it. */
describe('startTcpRelay', () => {
  let echo: Server;
  let relay: TcpRelay;
  let client: Socket;

  beforeEach(async () => {
    echo = createServer((socket) => socket.pipe(socket));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const address = echo.address();
    relay = await startTcpRelay({ targetPort: typeof address === 'object' && address ? address.port : 0 });
    client = connect({ host: '127.0.0.1', port: relay.port });
    await once(client, 'connect');
  });

  afterEach(async () => {
    client.destroy();
    await relay.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  function received(): { text: () => string } {
    let text = '';
    client.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { text: () => text };
  }

  async function until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  it('relays bytes unchanged and in order', async () => {
    const got = received();
    for (const word of ['one ', 'two ', 'three']) client.write(word);
    await until(() => got.text().length === 13);
    expect(got.text()).toBe('one two three');
    expect(relay.connections).toBe(1);
  });

  it('holds everything while stalled and passes it on, in order, on resume', async () => {
    const got = received();
    client.write('before ');
    await until(() => got.text() === 'before ');
    relay.stall();
    client.write('held ');
    client.write('too');
    // The echo server answers only once the relay passes the bytes on: nothing may arrive.
    const late = connect({ host: '127.0.0.1', port: relay.port });
    await once(late, 'connect');
    late.write('x');
    await new Promise((resolve) => setImmediate(resolve));
    expect(got.text()).toBe('before ');
    relay.resume();
    await until(() => got.text() === 'before held too');
    let lateText = '';
    late.on('data', (chunk: Buffer) => (lateText += chunk.toString()));
    await until(() => lateText === 'x');
    late.destroy();
  });

  it('delays every chunk by the set delay, both ways', async () => {
    const got = received();
    relay.setDelay(100);
    const sent = Date.now();
    client.write('slow');
    await until(() => got.text() === 'slow');
    // Two hops of the relay (there and back), each held at least the delay.
    expect(Date.now() - sent).toBeGreaterThanOrEqual(200);
  });
});
