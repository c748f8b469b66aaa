import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CRAWL_CATALOG_SCHEDULER, CRAWL_RECENT_SCHEDULER, SCHEDULE_QUEUE } from '@modproxy/queue';
import {
  createFixtureModules,
  createGitRecorder,
  createTempDir,
  removeDir,
  startAppProcess,
  waitUntil,
  type AppProcess,
  type FixtureModules,
  type GitRecorder,
} from '@modproxy/testing';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');
const REPLICAS = 3;

/**
 * The production shape with the crawler: the storage service on FerretDB, lathens on Redis,
 * three proxy replicas in front of lathens, and crathens crawling the catalog every second
 * through a GIT_BINARY that records what git was asked to do.
 */
describe('the scheduled crawl', () => {
  let fixtures: FixtureModules;
  let dir: string;
  let recorder: GitRecorder;
  const started: AppProcess[] = [];
  const proxies: string[] = [];
  let crathensEnv: Record<string, string>;
  let redis: Redis;
  let prefix: string;

  const crathens = (env: Record<string, string> = {}) =>
    startAppProcess(main('crathens'), {
      env: { ...crathensEnv, ...env },
      ready: /crathens running: admin (\S+)/,
    });

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    dir = await createTempDir('modproxy-crawl-e2e-');
    recorder = await createGitRecorder(dir);
    const token = randomBytes(24).toString('hex');
    const base = { PATH: process.env['PATH'] ?? '', HOME: fixtures.env['HOME'] ?? '', LOG_LEVEL: 'warn' };
    const storage = await startStorageProcess({
      env: { ...base },
      token,
      backend: { mongoUri: inject('mongoUri'), databasePrefix: 'crawl' },
    });
    started.push(storage);
    const storageEnv = {
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: `127.0.0.1:${storage.match[1] ?? ''}`,
      STORAGE_TOKEN: token,
    };
    const lathens = await startAppProcess(main('lathens'), {
      env: {
        ...base,
        ...fixtures.directEnv,
        ...storageEnv,
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: `crawl-e2e-${randomBytes(4).toString('hex')}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        UPSTREAM: 'direct',
        // Lists stay fresh for an hour: only the crawl's Refresh can make a new tag show.
        SOFT_TTL_MS: '3600000',
        HARD_TTL_MS: '3600000',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    const lathensUrl = lathens.match[1] ?? '';
    for (let i = 0; i < REPLICAS; i++) {
      const proxy = await startAppProcess(main('proxy'), {
        env: {
          ...base,
          ...fixtures.directEnv,
          ...storageEnv,
          PORT: '0',
          UPSTREAM: 'direct',
          LATHENS_GRPC_URL: lathensUrl,
          LATHENS_GRPC_TOKEN: token,
        },
        ready: /export GOPROXY=(\S+)/,
      });
      started.push(proxy);
      proxies.push(proxy.match[1] ?? '');
    }
    prefix = `crawl${randomBytes(4).toString('hex')}`;
    crathensEnv = {
      ...base,
      ...fixtures.directEnv,
      ADMIN_PORT: '0',
      QUEUE_REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      STORAGE_GRPC_URL: storageEnv.STORAGE_GRPC_URL,
      STORAGE_TOKEN: token,
      LATHENS_GRPC_URL: lathensUrl,
      LATHENS_GRPC_TOKEN: token,
      UPSTREAM: 'direct',
      GIT_BINARY: recorder.binary,
      CRAWL_INTERVAL_MS: '1000',
      CRAWL_JITTER_MS: '0',
      RECENT_CRAWL_INTERVAL_MS: '60000',
    };
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    await redis?.quit();
    for (const process of started.reverse()) await process.stop();
    if (dir) await removeDir(dir);
    await fixtures?.close();
  });

  const listOn = async (proxy: string, module: string, escaped: string) => {
    const response = await fetch(`${proxy}/${escaped}/@v/list`);
    expect(response.status, module).toBe(200);
    return (await response.text()).trim().split('\n');
  };

  it('finds a tag pushed to the repository and makes every replica list it, with git ls-remote and never a clone', async () => {
    const { hello } = fixtures;
    // A module becomes known: one version fetched through one replica, and listed everywhere.
    const zip = await fetch(`${proxies[0]}/${hello.escapedPath}/@v/v1.0.0.zip`);
    expect(zip.status).toBe(200);
    await zip.arrayBuffer();
    for (const proxy of proxies)
      expect(await listOn(proxy, hello.path, hello.escapedPath)).toEqual(hello.versions);

    const first = await crathens();
    started.push(first);
    await hello.repo.tag('v1.11.0');
    // No client asks for v1.11.0; lathens' list is fresh for an hour: only the crawl can do it.
    await waitUntil(
      async () => {
        const lists = await Promise.all(proxies.map((proxy) => listOn(proxy, hello.path, hello.escapedPath)));
        return lists.every((list) => list.includes('v1.11.0'));
      },
      { what: 'every replica lists v1.11.0', timeoutMs: 60_000, intervalMs: 200 },
    );
    for (const proxy of proxies)
      expect(await listOn(proxy, hello.path, hello.escapedPath)).toEqual([...hello.versions, 'v1.11.0']);

    const commands = await recorder.commands();
    expect(commands.length).toBeGreaterThan(0);
    expect(commands).toContainEqual(['ls-remote', '--tags', '--refs', hello.repoUrl]);
    expect(commands.every((args) => args[0] === 'ls-remote')).toBe(true);
  });

  it('keeps one scheduler of each kind across a second crathens and a restart', async () => {
    const second = await crathens();
    started.push(second);
    const queue = new Queue(SCHEDULE_QUEUE, { connection: redis, prefix });
    try {
      const kinds = async () =>
        (await queue.getJobSchedulers(0, -1, true)).map((scheduler) => scheduler.key).sort();
      expect(await kinds()).toEqual([CRAWL_CATALOG_SCHEDULER, CRAWL_RECENT_SCHEDULER]);
      expect(await second.stop()).toBe(0);
      const restarted = await crathens();
      started.push(restarted);
      expect(await kinds()).toEqual([CRAWL_CATALOG_SCHEDULER, CRAWL_RECENT_SCHEDULER]);
    } finally {
      await queue.close();
    }
  });
});
