import { once } from 'node:events';
import { Agent, createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeHttp, listenHttp } from './http-server';

/** Longer than any test may run: a shutdown that waits for it is a shutdown that hangs. */
const NEVER_MS = 600_000;

interface Held {
  req: IncomingMessage;
  res: ServerResponse;
}

/**
 * closeHttp with a keep-alive client whose response is still running when shutdown begins: the
 * connection must close as soon as that response is done, not when the grace period ends.
 */
describe('closeHttp with keep-alive connections', () => {
  let server: Server;
  let url: string;
  let agent: Agent;
  let held: Array<(value: Held) => void>;

  beforeEach(async () => {
    held = [];
    server = createServer((req, res) => {
      if (req.url === '/quick') {
        res.end('quick');
        return;
      }
      const next = held.shift();
      next?.({ req, res });
    });
    url = await listenHttp(server, 0, '127.0.0.1');
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
  });
  afterEach(async () => {
    agent.destroy();
    if (server.listening) await closeHttp(server, 0);
  });

  /** The next request the server takes, held until the test answers it. */
  const nextRequest = () => new Promise<Held>((resolve) => held.push(resolve));

  const send = (path: string) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      get(`${url}${path}`, { agent }, resolve).on('error', reject);
    });

  const bodyOf = async (response: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  };

  it('closes the connection of a response whose headers were not sent yet, saying Connection: close, as soon as it ends', async () => {
    // A kept-alive connection first, so the held request reuses it.
    expect(await bodyOf(await send('/quick'))).toBe('quick');
    const taken = nextRequest();
    const answer = send('/held');
    const { res } = await taken;

    const closing = closeHttp(server, NEVER_MS);
    res.end('held');
    const response = await answer;
    expect(response.headers.connection).toBe('close');
    expect(await bodyOf(response)).toBe('held');
    await closing;
    expect(server.listening).toBe(false);
  });

  it('closes the connection of a response already streaming when shutdown began, once its body is complete', async () => {
    const taken = nextRequest();
    const answer = send('/streaming');
    const { res } = await taken;
    res.writeHead(200, { 'content-length': '10' });
    res.write('12345');
    const response = await answer;
    // Sent before shutdown: it says keep-alive, and the client means to reuse the connection.
    expect(response.headers.connection).toBe('keep-alive');
    const socketClosed = once(response.socket, 'close');

    const closing = closeHttp(server, NEVER_MS);
    res.end('67890');
    expect(await bodyOf(response)).toBe('1234567890');
    await socketClosed;
    await closing;
  });

  it('still cuts off a response that does not end within the grace period', async () => {
    const taken = nextRequest();
    const answer = send('/stuck');
    const { res } = await taken;
    res.writeHead(200, { 'content-length': '10' });
    res.write('12345');
    const response = await answer;
    const cut = once(response, 'aborted');
    await closeHttp(server, 50);
    await cut;
  });
});
