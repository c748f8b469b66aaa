import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FetchQueue } from '@modproxy/queue';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  buildZip,
  CountingUpstream,
  createTempDir,
  removeDir,
  startAppProcess,
  waitUntil,
  type AppProcess,
} from '@modproxy/testing';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');
const VERSIONS = 500;
const HOST_CONCURRENCY = 3;
const TIME = '2024-01-02T03:04:05Z';

/**
 * Two crathens processes fetching a burst of 500 versions from one upstream proxy through their
 * fetch workers (ModuleService: fetch, verify, save through the storage service), with the
 * per-host limit shared through Redis.
 */
describe('per-host limits in crathens', () => {
  let dir: string;
  let upstream: CountingUpstream;
  const started: AppProcess[] = [];
  let storage: GrpcStorage;
  let redis: Redis;
  let fetches: FetchQueue;
  const modules = Array.from({ length: VERSIONS }, (_, i) => `burst.example/m${i}`);

  beforeAll(async () => {
    dir = await createTempDir('modproxy-host-limits-e2e-');
    // Valid module versions, so every fetch passes verification and is stored.
    const zips = new Map<string, Buffer>();
    for (const module of modules) {
      zips.set(
        module,
        await buildZip([
          { name: `${module}@v1.0.0/go.mod`, data: `module ${module}\n` },
          { name: `${module}@v1.0.0/m.go`, data: 'package m\n' },
        ]),
      );
    }
    upstream = await CountingUpstream.start({
      answer: (path) => {
        const file = /^\/(.+)\/@v\/v1\.0\.0\.(info|mod|zip)$/.exec(path);
        const module = file?.[1] ?? '';
        if (!file || !zips.has(module)) return { status: 404, body: 'not found' };
        // A host that takes a moment per answer, so requests overlap when nothing stops them.
        const delayMs = 5;
        if (file[2] === 'info')
          return { status: 200, body: JSON.stringify({ Version: 'v1.0.0', Time: TIME }), delayMs };
        if (file[2] === 'mod') return { status: 200, body: `module ${module}\n`, delayMs };
        return {
          status: 200,
          headers: { 'content-type': 'application/zip' },
          body: zips.get(module),
          delayMs,
        };
      },
    });
    const token = randomBytes(24).toString('hex');
    const base = { PATH: process.env['PATH'] ?? '', HOME: dir, LOG_LEVEL: 'warn' };
    const storageService = await startStorageProcess({
      env: { ...base },
      token,
      backend: { dir: join(dir, 'storage') },
    });
    started.push(storageService);
    const storageUrl = `127.0.0.1:${storageService.match[1] ?? ''}`;
    const prefix = `limits${randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 2; i++) {
      started.push(
        await startAppProcess(main('crathens'), {
          env: {
            ...base,
            ADMIN_PORT: '0',
            QUEUE_REDIS_URL: inject('redisUrl'),
            QUEUE_PREFIX: prefix,
            STORAGE_GRPC_URL: storageUrl,
            STORAGE_TOKEN: token,
            UPSTREAM: upstream.url,
            FETCH_CONCURRENCY: '16',
            HOST_CONCURRENCY: String(HOST_CONCURRENCY),
            HOST_RATE_PER_SECOND: '0',
            CRAWL_INTERVAL_MS: '86400000',
            RECENT_CRAWL_INTERVAL_MS: '86400000',
          },
          ready: /crathens running: admin (\S+)/,
        }),
      );
    }
    storage = new GrpcStorage({ url: storageUrl, token });
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    fetches = new FetchQueue({ connection: redis, prefix });
  });

  afterAll(async () => {
    await fetches?.close();
    await redis?.quit();
    await storage?.close();
    for (const process of started.reverse()) await process.stop();
    await upstream?.close();
    if (dir) await removeDir(dir);
  });

  it('a burst of 500 fetch jobs for one host never has more fetches in flight there than HOST_CONCURRENCY', async () => {
    await Promise.all(modules.map((module) => fetches.add(module, 'v1.0.0')));
    let stored = 0;
    await waitUntil(
      async () => {
        const page = await storage.catalog({ pageSize: VERSIONS + 1 });
        stored = page.entries.length;
        return stored === VERSIONS;
      },
      { what: `all ${VERSIONS} versions stored`, timeoutMs: 300_000, intervalMs: 250 },
    );
    const zips = upstream.requests.filter((request) => request.path.endsWith('.zip'));
    expect(zips).toHaveLength(VERSIONS);
    expect(upstream.maxSubjectsInFlight).toBeLessThanOrEqual(HOST_CONCURRENCY);
    expect(upstream.maxSubjectsInFlight).toBeGreaterThan(1);
  });
});
