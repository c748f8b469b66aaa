import { createHash, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createQueueRedis, FETCH_QUEUE, JobWorker } from '@modproxy/queue';
import { DiskStorage } from '@modproxy/storage';
import {
  type AppProcess,
  bundleApp,
  createTempDir,
  getFreePort,
  removeDir,
  startAppProcess,
  startRedisServer,
  waitUntil,
  writeLargeModule,
  type LargeModule,
  type RedisServer,
} from '@modproxy/testing';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** GET on a connection of its own, so that with WORKERS=2 the primary hands it to either worker. */
async function get(url: string): Promise<{ status: number; body: Buffer; retryAfter: string | null }> {
  const response = await fetch(url, { headers: { connection: 'close' } });
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    retryAfter: response.headers.get('retry-after'),
  };
}

/**
 * The built proxy (as a process, as it is deployed) whose QUEUE_REDIS_URL carries a password the
 * queue Redis (a real one, `--requirepass`) rejects: an operator's typo, or a password rotated on
 * one side only. The proxy must start and say so, serve what is stored, and use the queue as
 * soon as Redis accepts the password, without a restart; the password is printed nowhere.
 */
describe('the proxy with a queue Redis that rejects its password (built bundle, WORKERS=1 and 2)', () => {
  let main: string;
  let sandbox: string;
  let redis: RedisServer | undefined;
  let proxy: AppProcess | undefined;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    main = await bundleApp('proxy', 'proxy-queue-refused');
    sandbox = await createTempDir('proxy-queue-refused-');
  }, 120_000);

  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    while (closers.length > 0) await closers.pop()?.();
    await redis?.stop();
    redis = undefined;
  });

  afterAll(async () => {
    if (sandbox) await removeDir(sandbox);
  });

  it.each([1, 2])(
    'WORKERS=%i: prints its banner, names the queue Redis in /readyz, serves what is stored, and fetches through the queue once Redis accepts the password',
    async (workers) => {
      const rightPassword = `right-${randomBytes(12).toString('hex')}`;
      const wrongPassword = `wrong-${randomBytes(12).toString('hex')}`;
      redis = await startRedisServer({ password: rightPassword });
      const prefix = `refused-${workers}`;
      const dir = await createTempDir(`workers-${workers}-`, sandbox);
      for (const sub of ['storage', 'tmp', 'home', 'upstream']) await mkdir(join(dir, sub));
      // A stored version (served from storage) and one that only the queue can bring.
      const stored = await writeLargeModule(join(dir, 'upstream'), {
        module: 'example.test/refused/stored',
        zipBytes: 64 * 1024,
      });
      const missing = await writeLargeModule(join(dir, 'upstream'), {
        module: 'example.test/refused/missing',
        zipBytes: 64 * 1024,
      });
      const save = async (version: LargeModule) => {
        const storage = await DiskStorage.open({ root: join(dir, 'storage') });
        try {
          await storage.save({ ...version, zip: Readable.from([version.zip]) });
        } finally {
          await storage.close();
        }
      };
      await save(stored);

      proxy = await startAppProcess(main, {
        cwd: dir,
        env: {
          PATH: process.env['PATH'] ?? '',
          HOME: join(dir, 'home'),
          TMPDIR: join(dir, 'tmp'),
          PORT: '0',
          STORAGE_DIR: join(dir, 'storage'),
          // Nothing answers there: every fetch is the queue's (a worker of this test).
          UPSTREAM: `http://127.0.0.1:${await getFreePort()}`,
          WORKERS: String(workers),
          QUEUE_REDIS_URL: `redis://:${wrongPassword}@127.0.0.1:${redis.port}`,
          QUEUE_PREFIX: prefix,
          LOG_LEVEL: 'info',
        },
        ready: /export GOPROXY=(\S+)/,
        startTimeoutMs: 20_000,
      });
      const url = proxy.match[1] ?? '';
      const bodies: string[] = [];
      const answer = async (path: string) => {
        const response = await get(`${url}${path}`);
        bodies.push(response.body.toString('latin1'));
        return response;
      };

      // Degraded, saying why; every worker says so (fresh connections go to each in turn).
      for (let i = 0; i < 2 * workers; i++) {
        const ready = await answer('/readyz');
        expect([ready.status, ready.body.toString()]).toEqual([
          200,
          'degraded: queue Redis refuses the password of QUEUE_REDIS_URL, misses answered 503\n',
        ]);
      }
      for (let i = 0; i < 2 * workers; i++) {
        const hit = await answer(stored.zipUrlPath);
        expect([hit.status, sha256(hit.body)]).toEqual([200, stored.zipSha256]);
      }
      const refused = await answer(missing.zipUrlPath);
      expect([refused.status, refused.retryAfter, refused.body.toString()]).toEqual([
        503,
        '10',
        `${missing.module}@${missing.version}: the fetch queue is unavailable; try again shortly\n`,
      ]);

      // The operator mends the password on Redis' side: the proxy takes it up by itself.
      const admin: Redis = createQueueRedis(`redis://:${rightPassword}@127.0.0.1:${redis.port}`);
      closers.push(async () => admin.quit().catch(() => admin.disconnect()));
      await admin.config('SET', 'requirepass', wrongPassword);
      const workerConnection = createQueueRedis(`redis://:${wrongPassword}@127.0.0.1:${redis.port}`);
      const worker = new JobWorker({
        queueName: FETCH_QUEUE,
        connection: workerConnection,
        prefix,
        concurrency: 2,
        handlers: {
          FetchVersion: async ({ module, version }) => {
            if (module !== missing.module || version !== missing.version) throw new Error('unexpected job');
            await save(missing);
            return { result: 'fetched' };
          },
        },
      });
      closers.push(async () => workerConnection.quit().catch(() => workerConnection.disconnect()));
      closers.push(() => worker.close(1_000));
      await worker.start();
      let inARow = 0;
      await waitUntil(
        async () => {
          const ready = await answer('/readyz');
          inARow = ready.body.toString() === 'ok\n' ? inARow + 1 : 0;
          return inARow >= 2 * workers;
        },
        { what: 'every process is ready again', timeoutMs: 20_000 },
      );
      const fetched = await answer(missing.zipUrlPath);
      expect([fetched.status, sha256(fetched.body)]).toEqual([200, missing.zipSha256]);

      expect(await proxy.stop()).toBe(0);
      const printed = `${proxy.stdout()}\n${proxy.stderr()}`;
      expect(printed).toContain('the queue Redis refuses the password of QUEUE_REDIS_URL');
      expect(printed).toContain('the queue Redis accepts the password of QUEUE_REDIS_URL again');
      for (const secret of [wrongPassword, rightPassword]) {
        expect(printed).not.toContain(secret);
        for (const body of bodies) expect(body).not.toContain(secret);
      }
    },
    90_000,
  );
});
