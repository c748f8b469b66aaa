import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import {
  createTempDir,
  removeDir,
  startRedisServer,
  startStaticGoproxy,
  type RedisServer,
  type StaticGoproxy,
} from '@modproxy/testing';
import { GrpcVersions } from '@modproxy/versions-grpc';
import { loadLathensConfig } from './config';
import { startLathens, type RunningLathens } from './server';

const ALLOWED = 'example.test/allowed';
const DENIED = 'example.test/allowed/secret';
const OUTSIDE = 'other.test/lib';
const silent = createLogger({ service: 'lathens-filter-test', level: 'silent' });
const info = (version: string) => `{"Version":"${version}","Time":"2024-05-06T07:08:09Z"}`;

describe('lathens module filter (HTTP and gRPC, Redis, real upstream)', () => {
  let redis: RedisServer;
  let upstreamDir: string;
  let upstream: StaticGoproxy;
  let lathens: RunningLathens;
  let client: GrpcVersions;

  async function publish(module: string): Promise<void> {
    const base = join(upstreamDir, escapePath(module));
    await mkdir(join(base, '@v'), { recursive: true });
    await writeFile(join(base, '@v', 'list'), 'v1.0.0\n');
    await writeFile(join(base, '@latest'), info('v1.0.0'));
    await writeFile(join(base, '@v', 'v1.0.0.info'), info('v1.0.0'));
  }

  beforeAll(async () => {
    redis = await startRedisServer();
    upstreamDir = await createTempDir('lathens-filter-upstream-');
    upstream = await startStaticGoproxy(upstreamDir);
    await Promise.all([publish(ALLOWED), publish(DENIED), publish(OUTSIDE)]);
    const config = loadLathensConfig({
      env: {
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        REDIS_URL: redis.url,
        KEY_PREFIX: `filter${randomUUID().slice(0, 6)}:`,
        UPSTREAM: upstream.url,
        STORAGE_TYPE: 'none',
        ALLOWED_MODULES: 'example.test',
        DENIED_MODULES: 'example.test/allowed/secret',
        LOG_LEVEL: 'silent',
        SHUTDOWN_TIMEOUT_MS: '2000',
      },
    });
    lathens = await startLathens(config, silent);
    client = new GrpcVersions({ url: lathens.grpcAddress });
  });

  afterAll(async () => {
    await client?.close();
    await lathens?.shutdown();
    await upstream?.stop();
    await redis?.stop();
    await removeDir(upstreamDir);
  });

  it('answers 403 with a text body on every GOPROXY path of a denied or not-allowed module, asking upstream nothing', async () => {
    for (const [module, why] of [
      [DENIED, 'is denied by'],
      [OUTSIDE, 'is not allowed by'],
    ] as const) {
      for (const path of ['@v/list', '@latest', '@v/v1.0.0.info', '@v/v1.0.0.mod', '@v/v1.0.0.zip']) {
        const response = await fetch(`${lathens.httpUrl}/${escapePath(module)}/${path}`);
        expect(response.status, `${module}/${path}`).toBe(403);
        expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(await response.text()).toBe(`module ${module} ${why} this server's module filter\n`);
      }
    }
    expect(upstream.totalRequests).toBe(0);
    // The allowed module is served as usual.
    const allowed = await fetch(`${lathens.httpUrl}/${escapePath(ALLOWED)}/@v/list`);
    expect([allowed.status, await allowed.text()]).toEqual([200, 'v1.0.0\n']);
  });

  it('refuses them over gRPC too (PERMISSION_DENIED, kind forbidden) for list, latest, observe and invalidate', async () => {
    const before = upstream.totalRequests;
    for (const module of [DENIED, OUTSIDE]) {
      const calls = [
        client.list(module),
        client.latest(module),
        client.observe(module, 'v1.0.0'),
        client.invalidate(module),
      ];
      for (const outcome of await Promise.allSettled(calls)) {
        expect(outcome.status).toBe('rejected');
        const reason = (outcome as PromiseRejectedResult).reason as unknown;
        expect(isModuleError(reason, 'forbidden'), String(reason)).toBe(true);
      }
    }
    expect(upstream.totalRequests).toBe(before);
    expect((await client.list(ALLOWED)).versions).toEqual(['v1.0.0']);
  });
});
