import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hugeListVersions } from './hostile-behaviours';
import { type HostileUpstream, startHostileUpstream } from './hostile-upstream';
import { createTempDir, removeDir } from './temp-dir';
import { waitUntil } from './wait-until';

const INFO = '{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}';

let dir: string;
let hostile: HostileUpstream;

/** Opens a connection, sends one GET and collects what comes back. */
function get(
  base: string,
  path: string,
): { socket: Socket; received: () => string; closed: Promise<unknown> } {
  const url = new URL(base);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(`GET ${url.pathname.replace(/\/$/, '')}${path} HTTP/1.1\r\nHost: upstream\r\n\r\n`);
  return { socket, received: () => text, closed: once(socket, 'close') };
}

beforeAll(async () => {
  dir = await createTempDir('hostile-upstream-test-');
  await mkdir(join(dir, 'example.com/m/@v'), { recursive: true });
  await writeFile(join(dir, 'example.com/m/@v/v1.0.0.info'), INFO);
  hostile = await startHostileUpstream({ dir, oversizedBytes: 64_000_000, trickleMs: 20 });
});

afterAll(async () => {
  await hostile?.close();
  await removeDir(dir);
});

describe('HostileUpstream', () => {
  it('http10-close: an HTTP/1.0 answer with no length, ended by closing the connection', async () => {
    const exchange = get(hostile.urlFor('http10-close'), '/example.com/m/@v/v1.0.0.info');
    await exchange.closed;
    expect(exchange.received()).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(exchange.received()).not.toMatch(/content-length/i);
    expect(exchange.received().endsWith(`\r\n\r\n${INFO}`)).toBe(true);
  });

  it('short-body: a Content-Length longer than what is sent before the close', async () => {
    const exchange = get(hostile.urlFor('short-body'), '/example.com/m/@v/v1.0.0.info');
    await exchange.closed;
    const [head = '', body = ''] = exchange.received().split('\r\n\r\n');
    expect(Number(/content-length: (\d+)/i.exec(head)?.[1])).toBeGreaterThan(body.length);
  });

  it('stall-headers: header lines keep coming and the headers never end', async () => {
    const exchange = get(hostile.urlFor('stall-headers'), '/example.com/m/@v/v1.0.0.info');
    await waitUntil(() => (exchange.received().match(/X-Still-Coming/g) ?? []).length >= 3);
    expect(exchange.received()).not.toContain('\r\n\r\n');
    exchange.socket.destroy();
  });

  it('gzip: the body compressed although nobody asked for it', async () => {
    const exchange = get(hostile.urlFor('gzip'), '/example.com/m/@v/v1.0.0.info');
    await waitUntil(() => exchange.received().includes('\r\n\r\n'));
    const head = exchange.received().split('\r\n\r\n')[0] ?? '';
    expect(head).toMatch(/content-encoding: gzip/i);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    await waitUntil(() => exchange.received().length >= head.length + 4 + length);
    const body = Buffer.from(exchange.received().slice(head.length + 4), 'latin1');
    expect(gunzipSync(body).toString()).toBe(INFO);
    exchange.socket.destroy();
  });

  it('redirect-loop, 429, 503, html-info and huge-list answer as named; only the chosen kinds misbehave', async () => {
    const redirect = get(hostile.urlFor('redirect-loop'), '/example.com/m/@v/list');
    await waitUntil(() => redirect.received().includes('\r\n\r\n'));
    expect(redirect.received()).toContain('Location: /hostile/redirect-loop/example.com/m/@v/list\r\n');
    redirect.socket.destroy();

    const limited = get(hostile.urlFor('status-429'), '/example.com/m/@v/list');
    await waitUntil(() => limited.received().includes('rate limited'));
    expect(limited.received()).toMatch(/^HTTP\/1\.1 429 [^\r]*\r\n(.*\r\n)*Retry-After: 120\r\n/);
    limited.socket.destroy();

    const down = get(hostile.urlFor('status-503'), '/example.com/m/@v/list');
    await waitUntil(() => down.received().includes('maintenance'));
    const date = /Retry-After: ([^\r]+)\r\n/.exec(down.received())?.[1] ?? '';
    expect(Date.parse(date)).toBeGreaterThan(Date.now());
    down.socket.destroy();

    const html = get(hostile.urlFor('html-info', ['info']), '/example.com/m/@v/v1.0.0.info');
    await waitUntil(() => html.received().includes('</html>'));
    expect(html.received()).toMatch(/^HTTP\/1\.1 200 OK\r\nContent-Type: text\/html/);
    html.socket.destroy();
    const notInfo = get(hostile.urlFor('status-500', ['zip']), '/example.com/m/@v/v1.0.0.info');
    await waitUntil(() => notInfo.received().endsWith(INFO));
    notInfo.socket.destroy();

    const list = get(hostile.urlFor('huge-list'), '/example.com/m/@v/list');
    const expected = `${hugeListVersions(100_000).join('\n')}\n`;
    await waitUntil(() => list.received().endsWith(expected));
    list.socket.destroy();
  });

  it('counts requests and closes every connection, stalled ones included, on close()', async () => {
    const own = await startHostileUpstream({ dir, behaviour: 'stall-body' });
    const exchanges = [1, 2, 3].map(() => get(own.url, '/example.com/m/@v/v1.0.0.info'));
    await waitUntil(() => own.requestCount('/example.com/m/@v/v1.0.0.info') === 3);
    expect(own.requestsWith('stall-body')).toBe(3);
    expect(own.connections).toBe(3);
    await own.close();
    await Promise.all(exchanges.map((exchange) => exchange.closed));
    expect(own.connections).toBe(0);
  });

  it('oversized-404: streams its long page only as fast as the client reads', async () => {
    const exchange = get(hostile.urlFor('oversized-404'), '/example.com/m/@v/list');
    await waitUntil(() => exchange.received().length > 100_000);
    exchange.socket.pause();
    exchange.socket.destroy();
    await exchange.closed;
    expect(exchange.received()).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(exchange.received()).toContain('Content-Length: 64000000\r\n');
    await waitUntil(() => hostile.connections === 0);
    // What the kernel buffers for a client that stopped reading is a few MiB, not the page.
    expect(hostile.oversizedBytesSent).toBeLessThan(32_000_000);
  });
});
