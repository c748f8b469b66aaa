import { createHash, randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errors, type ModuleError } from '@modproxy/errors';
import { escapePath } from '@modproxy/gomod';
import { ModuleService } from '@modproxy/module-service';
import { createLogger } from '@modproxy/observability';
import { createQueueRedis, FETCH_QUEUE, JobWorker, RecentModules } from '@modproxy/queue';
import { MemoryStorage } from '@modproxy/storage';
import {
  createTempDir,
  getFreePort,
  removeDir,
  startRedisServer,
  startStaticGoproxy,
  waitUntil,
  writeLargeModule,
  type LargeModule,
  type RedisServer,
  type StaticGoproxy,
} from '@modproxy/testing';
import { createUpstreamFromConfig } from '@modproxy/upstream';
import { UpstreamVersions } from '@modproxy/versions';
import { loadProxyConfig } from './config';
import { startProxy, type RunningProxy } from './server';

const silent = () =>
  createLogger({
    service: 'proxy-test',
    level: 'warn',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });

interface Answer {
  status: number;
  body: Buffer;
  headers: Headers;
}

async function get(url: string): Promise<Answer> {
  const response = await fetch(url, { redirect: 'manual' });
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    headers: response.headers,
  };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The proxy's queue path in process, against a real Redis: proxy replicas with
 * QUEUE_REDIS_URL and one storage they share, and a fetch worker as crathens runs it (a
 * JobWorker whose FetchVersion handler is the module service's own fetch), or one that fails
 * the way the test says.
 */
describe('proxy misses through the fetch queue (real Redis)', () => {
  let redis: RedisServer;
  let upstreamDir: string;
  let upstream: StaticGoproxy;
  let prefix: string;
  const modules: LargeModule[] = [];
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    upstreamDir = await createTempDir('queued-downloads-');
    for (const name of ['burst', 'async', 'recent', 'kinds']) {
      modules.push(
        await writeLargeModule(upstreamDir, { module: `example.test/queued/${name}`, zipBytes: 64 * 1024 }),
      );
    }
    upstream = await startStaticGoproxy(upstreamDir);
  });

  afterAll(async () => {
    await upstream?.stop();
    await redis?.stop();
    await removeDir(upstreamDir);
  });

  afterEach(async () => {
    while (closers.length > 0) await closers.pop()?.();
  });

  const connection = (): Redis => {
    const redisConnection = createQueueRedis(redis.url);
    closers.unshift(async () => redisConnection.quit().catch(() => undefined));
    return redisConnection;
  };

  async function replica(storage: MemoryStorage, env: Record<string, string> = {}): Promise<RunningProxy> {
    const config = loadProxyConfig({
      env: {
        PORT: '0',
        STORAGE_TYPE: 'memory',
        UPSTREAM: upstream.url,
        QUEUE_REDIS_URL: redis.url,
        QUEUE_PREFIX: prefix,
        ...env,
      },
    });
    const proxy = await startProxy(config, silent(), { storage });
    closers.push(() => proxy.shutdown());
    return proxy;
  }

  /** crathens' fetch worker in miniature: the module service's fetch into `storage`. */
  async function fetchWorker(storage: MemoryStorage): Promise<void> {
    const config = loadProxyConfig({ env: { UPSTREAM: upstream.url } });
    const fetchUpstream = createUpstreamFromConfig(config, { fetchTimeoutMs: 60_000 });
    const service = new ModuleService({
      storage,
      upstream: fetchUpstream,
      versions: new UpstreamVersions({ storage }),
    });
    await failingWorker(async (module, version) => {
      await service.ensureStored(module, version);
      return { result: 'fetched' };
    });
    closers.unshift(async () => fetchUpstream.close?.());
  }

  async function failingWorker(handle: (module: string, version: string) => Promise<unknown>): Promise<void> {
    const worker = new JobWorker({
      queueName: FETCH_QUEUE,
      connection: connection(),
      prefix,
      handlers: { FetchVersion: ({ module, version }) => handle(module, version) },
    });
    await worker.start();
    closers.unshift(() => worker.close(1_000));
  }

  const zipPath = (module: LargeModule) => `/${escapePath(module.module)}/@v/${module.version}.zip`;

  it('sync: clients of several replicas are answered with the zip one worker fetched once', async () => {
    prefix = `q-${randomUUID()}`;
    const storage = new MemoryStorage();
    const replicas = [await replica(storage), await replica(storage), await replica(storage)];
    await fetchWorker(storage);
    const module = modules[0] as LargeModule;
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => get(`${replicas[i % 3]?.url ?? ''}${zipPath(module)}`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(new Set(answers.map((a) => sha256(a.body)))).toEqual(new Set([module.zipSha256]));
    expect(upstream.requestCount(zipPath(module))).toBe(1);
    // Every answer that waited for the fetch says so; a later one comes from storage.
    expect(answers.some((a) => a.headers.get('x-modproxy-source') === 'upstream')).toBe(true);
    expect((await get(`${replicas[0]?.url ?? ''}${zipPath(module)}`)).headers.get('x-modproxy-source')).toBe(
      'storage',
    );
  });

  it('async: a miss is answered 404 at once and the version is stored shortly after', async () => {
    prefix = `q-${randomUUID()}`;
    const storage = new MemoryStorage();
    const proxy = await replica(storage, { DOWNLOAD_MODE: 'async' });
    const module = modules[1] as LargeModule;
    // No worker yet: the 404 cannot have waited for the fetch.
    const miss = await get(`${proxy.url}${zipPath(module)}`);
    expect(miss.status).toBe(404);
    expect(miss.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(miss.body.toString()).toBe(
      `${module.module}@${module.version} is being fetched; try again shortly\n`,
    );
    expect(await storage.exists(module.module, module.version)).toBe(false);
    await fetchWorker(storage);
    await waitUntil(() => storage.exists(module.module, module.version), {
      what: 'the queued fetch stored it',
    });
    const hit = await get(`${proxy.url}${zipPath(module)}`);
    expect([hit.status, sha256(hit.body), hit.headers.get('x-modproxy-source')]).toEqual([
      200,
      module.zipSha256,
      'storage',
    ]);
  });

  it('records the modules clients asked about for the crawl-recent scheduler', async () => {
    prefix = `q-${randomUUID()}`;
    const storage = new MemoryStorage();
    const proxy = await replica(storage);
    await fetchWorker(storage);
    const module = modules[2] as LargeModule;
    const startedAt = Date.now();
    expect((await get(`${proxy.url}/${escapePath(module.module)}/@v/list`)).status).toBe(200);
    expect((await get(`${proxy.url}/example.test/queued/listed-only/@latest`)).status).toBe(404);
    const recent = new RecentModules({ redis: connection(), prefix });
    closers.unshift(() => recent.close());
    await waitUntil(async () => (await recent.since(startedAt)).length === 2, {
      what: 'both modules were recorded',
    });
    expect((await recent.since(startedAt)).sort()).toEqual([
      'example.test/queued/listed-only',
      module.module,
    ]);
  });

  it('with the queue Redis away: serves what is stored, refuses a miss with 503 and Retry-After, reports degraded', async () => {
    prefix = `q-${randomUUID()}`;
    const storage = new MemoryStorage();
    const stored = modules[3] as LargeModule;
    await storage.save({
      module: stored.module,
      version: stored.version,
      info: stored.info,
      mod: stored.mod,
      zip: Readable.from([stored.zip]),
    });
    const closed = await getFreePort();
    const proxy = await replica(storage, { QUEUE_REDIS_URL: `redis://127.0.0.1:${closed}` });
    const hit = await get(`${proxy.url}${zipPath(stored)}`);
    expect([hit.status, sha256(hit.body)]).toEqual([200, stored.zipSha256]);
    // A zip: an .info or .mod is answered from the upstream GOPROXY alone (no queue needed).
    const miss = await get(`${proxy.url}/example.test/queued/away/@v/v1.0.0.zip`);
    expect([miss.status, miss.headers.get('retry-after'), miss.body.toString()]).toEqual([
      503,
      '10',
      'example.test/queued/away@v1.0.0: the fetch queue is unavailable; try again shortly\n',
    ]);
    const ready = await get(`${proxy.url}/readyz`);
    expect([ready.status, ready.body.toString()]).toEqual([
      200,
      'degraded: queue Redis unavailable, misses answered 503\n',
    ]);
  });

  it('answers a queued failure with its kind, a text body and Retry-After', async () => {
    prefix = `q-${randomUUID()}`;
    const storage = new MemoryStorage();
    // The wait ends before the worker's retries do: the proxy answers with the last attempt's failure.
    const proxy = await replica(storage, { FETCH_TIMEOUT_MS: '1500' });
    const failures: Record<string, ModuleError> = {
      'v1.0.1': errors.notFound('test.fetch', 'example.test/queued/kinds@v1.0.1: not found upstream'),
      'v1.0.2': errors.badGateway('test.fetch', 'example.test/queued/kinds@v1.0.2: upstream failed: 500'),
      'v1.0.3': errors.timeout('test.fetch', 'example.test/queued/kinds@v1.0.3: upstream timed out'),
      'v1.0.4': errors.unavailable('test.fetch', 'example.test/queued/kinds@v1.0.4: upstream busy', {
        retryAfterSeconds: 42,
      }),
    };
    await failingWorker(async (_module, version) => {
      throw failures[version] ?? errors.internal('test.fetch', `unexpected ${version}`);
    });
    const answers = await Promise.all(
      Object.keys(failures).map((version) =>
        // Zips: an .info or .mod would be answered from the upstream GOPROXY alone.
        get(`${proxy.url}/example.test/queued/kinds/@v/${version}.zip`),
      ),
    );
    expect(
      answers.map((a) => [
        a.status,
        a.headers.get('content-type'),
        a.body.toString(),
        a.headers.get('retry-after'),
      ]),
    ).toEqual([
      [404, 'text/plain; charset=utf-8', 'example.test/queued/kinds@v1.0.1: not found upstream\n', null],
      [502, 'text/plain; charset=utf-8', 'example.test/queued/kinds@v1.0.2: upstream failed: 500\n', null],
      [504, 'text/plain; charset=utf-8', 'example.test/queued/kinds@v1.0.3: upstream timed out\n', null],
      [503, 'text/plain; charset=utf-8', 'example.test/queued/kinds@v1.0.4: upstream busy\n', '42'],
    ]);
    expect(await storage.catalog({ pageSize: 10 })).toEqual({ entries: [] });
  }, 30_000);
});
