import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  bundleApp,
  createTempDir,
  getFreePort,
  rawRequest,
  type RedisServer,
  removeDir,
  startAppProcess,
  startRedisServer,
} from '@modproxy/testing';

/** Far past SHUTDOWN_TIMEOUT_MS below: a process still there then is hung, and is SIGKILLed (exit code null). */
const HUNG_AFTER_MS = 30_000;

/** The built lathens as a process whose Redis is not one it can use, then SIGTERM. */
describe('lathens shutdown when its Redis cannot be used (real process)', () => {
  let main: string;
  let sandbox: string;
  let guarded: RedisServer;
  const running: AppProcess[] = [];
  const servers: RedisServer[] = [];

  beforeAll(async () => {
    main = await bundleApp('lathens', 'lathens-shutdown');
    sandbox = await createTempDir('lathens-shutdown-');
    guarded = await startRedisServer({ password: `right-${randomUUID()}` });
  });
  afterEach(async () => {
    for (const process of running.splice(0)) await process.stop(0);
    for (const server of servers.splice(0)) await server.stop();
  });
  afterAll(async () => {
    await guarded?.stop();
    if (sandbox) await removeDir(sandbox);
  });

  const start = async (redisUrl: string): Promise<AppProcess> => {
    const dir = join(sandbox, randomUUID());
    for (const sub of ['home', 'tmp', 'go-work']) await mkdir(join(dir, sub), { recursive: true });
    const lathens = await startAppProcess(main, {
      cwd: dir,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: join(dir, 'home'),
        TMPDIR: join(dir, 'tmp'),
        GO_WORK_DIR: join(dir, 'go-work'),
        REDIS_URL: redisUrl,
        KEY_PREFIX: `shutdown-${randomUUID().slice(0, 8)}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        UPSTREAM: 'off',
        STORAGE_TYPE: 'none',
        SHUTDOWN_TIMEOUT_MS: '1000',
        LOG_LEVEL: 'info',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    running.push(lathens);
    return lathens;
  };

  /** A request that touches the cache and the revalidation queue, then SIGTERM. */
  const stopAfterARequest = async (lathens: AppProcess): Promise<number | null> => {
    const answer = await rawRequest(lathens.match[2] ?? '', '/example.test/shutdown/@v/list');
    expect(answer.status).toBeGreaterThanOrEqual(400);
    return lathens.stop(HUNG_AFTER_MS);
  };

  it('exits 0 on SIGTERM when its Redis is unreachable (a closed loopback port)', async () => {
    const lathens = await start(`redis://127.0.0.1:${await getFreePort()}`);
    expect(await stopAfterARequest(lathens)).toBe(0);
  });

  it('exits 0 on SIGTERM when its Redis refuses the password', async () => {
    const lathens = await start(`redis://:wrong-password@127.0.0.1:${guarded.port}`);
    expect(await stopAfterARequest(lathens)).toBe(0);
    expect(lathens.stdout()).not.toContain('wrong-password');
  });

  it('exits 0 on SIGTERM when its Redis went away while it ran', async () => {
    const redis = await startRedisServer();
    servers.push(redis);
    const lathens = await start(redis.url);
    await redis.stop();
    expect(await stopAfterARequest(lathens)).toBe(0);
  });
});
