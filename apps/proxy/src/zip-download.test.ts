import { request } from 'node:http';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { type CallOptions, MemoryStorage, type ZipContent } from '@modproxy/storage';
import { waitUntil } from '@modproxy/testing';
import { loadProxyConfig } from './config';
import { type RunningProxy, startProxy } from './server';

const MODULE = 'example.com/broken';
const VERSION = 'v1.0.0';
const SIZE = 1024 * 1024;

/**
 * Storage whose zips claim SIZE bytes, stream `sendBytes` of them and then nothing more, until
 * the test calls {@link fail} (or, with `failFirst`, fail before their first byte).
 */
class HalfZipStorage extends MemoryStorage {
  readonly opened: PassThrough[] = [];

  constructor(
    private readonly sendBytes: number,
    private readonly failFirst = false,
  ) {
    super();
  }

  override async zip(_module: string, _version: string, _options?: CallOptions): Promise<ZipContent> {
    const stream = new PassThrough();
    this.opened.push(stream);
    if (this.failFirst) setImmediate(() => stream.destroy(new Error('disk read failed: EIO')));
    else stream.write(Buffer.alloc(this.sendBytes, 7));
    return { stream, size: SIZE };
  }

  fail(): void {
    for (const stream of this.opened) stream.destroy(new Error('disk read failed: EIO'));
  }
}

let proxy: RunningProxy | undefined;
const lines: Record<string, unknown>[] = [];

async function start(storage: MemoryStorage): Promise<RunningProxy> {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ service: 'proxy-test', level: 'debug', destination });
  const config = loadProxyConfig({ env: { PORT: '0', STORAGE_TYPE: 'memory', UPSTREAM: 'off' } });
  proxy = await startProxy(config, logger, { storage });
  return proxy;
}

/** GETs the zip and resolves with how it ended and what arrived. */
function download(
  url: string,
  options: { leaveAfterBytes?: number; onBytes?: () => void } = {},
): Promise<{ status: number; declared: number; received: number; complete: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/${MODULE}/@v/${VERSION}.zip`, (res) => {
      let received = 0;
      let text = '';
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          declared: Number(res.headers['content-length']),
          received,
          complete: res.complete,
          body: text,
        });
      res.on('data', (chunk: Buffer) => {
        if (received === 0) options.onBytes?.();
        received += chunk.length;
        if (res.statusCode !== 200) text += chunk.toString();
        if (options.leaveAfterBytes !== undefined && received >= options.leaveAfterBytes) {
          req.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', (error) => (options.leaveAfterBytes === undefined ? reject(error) : undefined));
    req.end();
  });
}

async function interrupted(url: string, cause: 'storage' | 'client'): Promise<number> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`modproxy_zip_downloads_interrupted_total\\{cause="${cause}"\\} (\\d+)`).exec(
    metrics,
  );
  return Number(match?.[1] ?? Number.NaN);
}

afterEach(async () => {
  await proxy?.shutdown();
  proxy = undefined;
  lines.length = 0;
});

describe('a zip download that ends early', () => {
  it('when the stored zip fails after the headers: logged at warn and counted', async () => {
    const storage = new HalfZipStorage(300_000);
    const running = await start(storage);
    expect(await interrupted(running.url, 'storage')).toBe(0);

    // The storage fails once the client has its first bytes: the headers are long gone.
    const result = await download(running.url, { onBytes: () => storage.fail() });
    expect(result.status).toBe(200);
    expect(result.declared).toBe(SIZE);
    expect(result.complete).toBe(false);
    expect(result.received).toBeLessThan(SIZE);

    await waitUntil(async () => (await interrupted(running.url, 'storage')) === 1, {
      what: 'the failure is counted',
    });
    expect(await interrupted(running.url, 'client')).toBe(0);
    const warning = lines.find(
      (line) => line['msg'] === 'zip download cut short: the stored zip failed after the headers were sent',
    );
    expect(warning).toMatchObject({
      level: 'warn',
      module: MODULE,
      version: VERSION,
      size: SIZE,
      reason: 'disk read failed: EIO',
    });
    expect(warning?.['bytesSent']).toBeGreaterThanOrEqual(result.received);
    expect(warning?.['bytesSent']).toBeLessThanOrEqual(300_000);
    // The metric's labels never name a module.
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    expect(
      metrics.split('\n').filter((line) => line.includes('interrupted') && line.includes(MODULE)),
    ).toEqual([]);
  });

  it('when the client goes away: counted as such, not logged as a failure', async () => {
    const storage = new HalfZipStorage(300_000);
    const running = await start(storage);
    const result = await download(running.url, { leaveAfterBytes: 100_000 });
    expect(result.status).toBe(200);

    await waitUntil(async () => (await interrupted(running.url, 'client')) === 1, {
      what: 'the departure is counted',
    });
    expect(await interrupted(running.url, 'storage')).toBe(0);
    // The stored zip's stream is released, not left open for a client that is gone.
    expect(storage.opened[0]?.destroyed).toBe(true);
    expect(lines.filter((line) => line['level'] === 'warn' || line['level'] === 'error')).toEqual([]);
    expect(lines.find((line) => line['msg'] === 'zip download: the client went away')).toMatchObject({
      level: 'debug',
      module: MODULE,
      version: VERSION,
    });
  });

  it('when the stored zip fails before its first byte: a status, not a dropped connection', async () => {
    const running = await start(new HalfZipStorage(0, true));
    const result = await download(running.url);
    expect(result.status).toBe(500);
    expect(result.body).toBe('internal error\n');
    expect(await interrupted(running.url, 'storage')).toBe(0);
    expect(await interrupted(running.url, 'client')).toBe(0);
  });

  it('a whole download is neither', async () => {
    class WholeZipStorage extends MemoryStorage {
      override async zip(): Promise<ZipContent> {
        return { stream: Readable.from([Buffer.alloc(SIZE, 1)]), size: SIZE };
      }
    }
    const running = await start(new WholeZipStorage());
    const result = await download(running.url);
    expect(result).toMatchObject({ status: 200, received: SIZE, complete: true });
    expect(await interrupted(running.url, 'storage')).toBe(0);
    expect(await interrupted(running.url, 'client')).toBe(0);
  });
});
