import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import {
  type AppProcess,
  bundleApp,
  createTempDir,
  rawRequest,
  type RedisServer,
  removeDir,
  snapshotTree,
  startAppProcess,
  startRedisServer,
  type StaticGoproxy,
  startStaticGoproxy,
} from '@modproxy/testing';

const MODULE = 'example.test/Traversal/lib';
const ESCAPED = escapePath(MODULE);

/** The built lathens as a process, its storage, temp, home and working directories in one sandbox. */
describe('lathens HTTP: traversal and malformed requests sent as raw request lines', () => {
  let redis: RedisServer;
  let sandbox: string;
  let upstream: StaticGoproxy;
  let lathens: AppProcess;
  let url: string;

  beforeAll(async () => {
    const main = await bundleApp('lathens', 'lathens-traversal');
    redis = await startRedisServer();
    sandbox = await createTempDir('lathens-traversal-');
    for (const dir of ['storage', 'tmp', 'home', 'cwd', 'go-work']) await mkdir(join(sandbox, dir));
    const versions = join(sandbox, 'upstream', ESCAPED, '@v');
    await mkdir(versions, { recursive: true });
    await writeFile(join(versions, 'list'), 'v1.0.0\n');
    await writeFile(join(versions, 'v1.0.0.info'), '{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}');
    await writeFile(
      join(sandbox, 'upstream', ESCAPED, '@latest'),
      '{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}',
    );
    upstream = await startStaticGoproxy(join(sandbox, 'upstream'));
    lathens = await startAppProcess(main, {
      cwd: join(sandbox, 'cwd'),
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: join(sandbox, 'home'),
        TMPDIR: join(sandbox, 'tmp'),
        GO_WORK_DIR: join(sandbox, 'go-work'),
        REDIS_URL: redis.url,
        KEY_PREFIX: `traversal-${randomUUID().slice(0, 8)}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        UPSTREAM: upstream.url,
        STORAGE_TYPE: 'disk',
        STORAGE_DIR: join(sandbox, 'storage'),
        LOG_LEVEL: 'warn',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    url = lathens.match[2] ?? '';
  });

  afterAll(async () => {
    await lathens?.stop();
    await upstream?.stop();
    await redis?.stop();
    if (sandbox) await removeDir(sandbox);
  });

  it('answers every one with a 4xx text body and writes nothing anywhere in the sandbox', async () => {
    // A real answer first, so the cache and storage paths are warm and known to work.
    const list = await rawRequest(url, `/${ESCAPED}/@v/list`);
    expect(list.status).toBe(200);
    expect(list.body.toString()).toBe('v1.0.0\n');

    const before = await snapshotTree(sandbox, { directories: true });
    const attempts = [
      `/${ESCAPED}/../../../../../../etc/passwd/@v/list`,
      `/${ESCAPED}/%2e%2e/%2e%2e/%2e%2e/etc/@v/list`,
      `/../../../etc/passwd/@v/list`,
      `/%2e%2e/%2e%2e/etc/@v/list`,
      `/%2E%2E/%2e%2E/etc/@latest`,
      `/.%2e/.%2e/tmp/x/@latest`,
      `/example.test/..%2f..%2fetc/@v/list`,
      `/example.test/..%5c..%5cetc/@v/list`,
      `/example.test%2ftraversal/@v/list`,
      `/example.test/x%00/@v/list`,
      `//etc/passwd/@v/list`,
      `/example.test/./lib/@latest`,
      `/example.test/Traversal/lib/@v/list`,
      `/example.test/!1raversal/lib/@latest`,
      `/${'a'.repeat(2000)}.test/x/@v/list`,
      `/example.test/${'b'.repeat(300)}/@v/list`,
      `/example.test/\u00e9/@v/list`,
      `/${ESCAPED}/@v/v1.0.0.zip`,
      `/${ESCAPED}/@v/../../../../etc/passwd.info`,
    ];
    for (const path of attempts) {
      const response = await rawRequest(url, path);
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
      expect(String(response.headers['content-type']), path).toMatch(/^text\/plain/);
      expect(response.body.length, path).toBeGreaterThan(0);
    }
    expect(await snapshotTree(sandbox, { directories: true })).toEqual(before);
    expect(lathens.child.exitCode).toBeNull();
  });
});
