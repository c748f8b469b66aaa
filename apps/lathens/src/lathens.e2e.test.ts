import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import { DiskStorage } from '@modproxy/storage';
import {
  createTempDir,
  goEnv,
  removeDir,
  runGo,
  startRedisServer,
  startStaticGoproxy,
  type RedisServer,
  type StaticGoproxy,
} from '@modproxy/testing';
import type { ListAnswer } from '@modproxy/versions';
import { GrpcVersions } from '@modproxy/versions-grpc';
import { loadLathensConfig } from './config';
import { startLathens, type RunningLathens } from './server';

const MODULE = 'example.test/Mixed/lib';
const ESCAPED = escapePath(MODULE);
const silent = createLogger({ service: 'lathens-test', level: 'silent' });
const info = (version: string) => `{"Version":"${version}","Time":"2024-05-06T07:08:09Z"}`;

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return check();
}

describe('lathens (gRPC and HTTP, Redis, BullMQ, real upstream and storage)', () => {
  let redis: RedisServer;
  let upstreamDir: string;
  let upstream: StaticGoproxy;
  let storageDir: string;
  let lathens: RunningLathens;
  let client: GrpcVersions;

  /** Upstream now has these versions (list, @latest and each .info, as a GOPROXY serves them). */
  async function publish(module: string, versions: string[]): Promise<void> {
    const base = join(upstreamDir, escapePath(module));
    await mkdir(join(base, '@v'), { recursive: true });
    await writeFile(join(base, '@v', 'list'), versions.map((version) => `${version}\n`).join(''));
    await writeFile(join(base, '@latest'), info(versions.at(-1) ?? ''));
    for (const version of versions) {
      await writeFile(join(base, '@v', `${version}.info`), info(version));
      await writeFile(join(base, '@v', `${version}.mod`), `module ${module}\n`);
    }
  }

  beforeAll(async () => {
    redis = await startRedisServer();
    upstreamDir = await createTempDir('lathens-upstream-');
    upstream = await startStaticGoproxy(upstreamDir);
    await publish(MODULE, ['v1.0.0', 'v1.1.0']);
    storageDir = await createTempDir('lathens-storage-');
    const storage = await DiskStorage.open({ root: storageDir });
    await storage.save({
      module: MODULE,
      version: 'v0.9.0',
      info: Buffer.from(info('v0.9.0')),
      mod: Buffer.from(`module ${MODULE}\n`),
      zip: Readable.from([Buffer.from('zip bytes')]),
    });
    await storage.close();
    const config = loadLathensConfig({
      env: {
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        REDIS_URL: redis.url,
        KEY_PREFIX: `e2e${randomUUID().slice(0, 6)}:`,
        UPSTREAM: upstream.url,
        STORAGE_TYPE: 'disk',
        STORAGE_DIR: storageDir,
        SOFT_TTL_MS: '1000',
        HARD_TTL_MS: '60000',
        NEGATIVE_TTL_MS: '60000',
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
    await removeDir(storageDir);
  });

  it('serves /@v/list and /@latest over HTTP with GOPROXY escaping, source headers and stored versions merged', async () => {
    const list = await fetch(`${lathens.httpUrl}/${ESCAPED}/@v/list`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(list.headers.get('x-modproxy-source')).toBe('upstream');
    expect(list.headers.get('cache-control')).toBe('public, max-age=1');
    expect(await list.text()).toBe('v0.9.0\nv1.0.0\nv1.1.0\n');

    const again = await fetch(`${lathens.httpUrl}/${ESCAPED}/@v/list`);
    expect(again.headers.get('x-modproxy-source')).toBe('cache');
    expect(again.headers.get('x-modproxy-stale')).toBeNull();
    await again.text();

    const latest = await fetch(`${lathens.httpUrl}/${ESCAPED}/@latest`);
    expect(latest.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await latest.text()).toBe(info('v1.1.0'));
    expect(upstream.requestCount(`/${ESCAPED}/@v/list`)).toBe(1);
  });

  it('answers errors in text/plain with the status the go command expects, and 404 for other GOPROXY paths', async () => {
    const missing = await fetch(`${lathens.httpUrl}/example.test/nope/@v/list`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await missing.text()).toMatch(/not found/i);

    const invalid = await fetch(`${lathens.httpUrl}/Example.test/Upper/@latest`);
    expect(invalid.status).toBe(400);
    await invalid.text();

    const infoPath = await fetch(`${lathens.httpUrl}/${ESCAPED}/@v/v1.0.0.info`);
    expect(infoPath.status).toBe(404);
    await infoPath.text();
  });

  it('stands in front of a GOPROXY for the real go command', async () => {
    const gopath = await createTempDir('lathens-gopath-');
    try {
      const env = goEnv(process.env, {
        GOPROXY: `${lathens.httpUrl},${upstream.url}`,
        GOSUMDB: 'off',
        GOFLAGS: '-modcacherw',
        GOPATH: gopath,
        GOMODCACHE: join(gopath, 'mod'),
        GOCACHE: join(gopath, 'cache'),
        GOTOOLCHAIN: 'local',
      });
      const result = await runGo(['list', '-m', '-versions', MODULE], { cwd: gopath, env });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(`${MODULE} v0.9.0 v1.0.0 v1.1.0`);
    } finally {
      await removeDir(gopath);
    }
  });

  it('serves the VersionService over gRPC: list, latest, observe (seen over HTTP at once), invalidate, health', async () => {
    expect(await client.serving()).toBe(true);
    expect((await client.list(MODULE)).versions).toEqual(['v0.9.0', 'v1.0.0', 'v1.1.0']);
    expect((await client.latest(MODULE)).info.toString()).toBe(info('v1.1.0'));

    // Observe lists only what storage holds.
    await expect(client.observe(MODULE, 'v1.2.0')).rejects.toMatchObject({ kind: 'not-found' });
    const storage = await DiskStorage.open({ root: storageDir });
    await storage.save({
      module: MODULE,
      version: 'v1.2.0',
      info: Buffer.from(info('v1.2.0')),
      mod: Buffer.from(`module ${MODULE}\n`),
      zip: Readable.from([Buffer.from('zip bytes')]),
    });
    await storage.close();
    await client.observe(MODULE, 'v1.2.0');
    expect(await (await fetch(`${lathens.httpUrl}/${ESCAPED}/@v/list`)).text()).toBe(
      'v0.9.0\nv1.0.0\nv1.1.0\nv1.2.0\n',
    );

    await publish(MODULE, ['v1.0.0', 'v1.1.0', 'v1.2.0']);
    const before = upstream.requestCount(`/${ESCAPED}/@latest`);
    await client.invalidate(MODULE);
    expect(await client.latest(MODULE)).toMatchObject({ source: 'upstream', stale: false });
    expect(upstream.requestCount(`/${ESCAPED}/@latest`)).toBe(before + 1);
    await expect(client.list('example.test/nope')).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('revalidates a stale answer in the background through its BullMQ worker', async () => {
    const module = 'example.test/revalidated/lib';
    await publish(module, ['v1.0.0']);
    expect((await client.list(module)).versions).toEqual(['v1.0.0']);
    await publish(module, ['v1.0.0', 'v2.0.0+incompatible']);
    // Asking until the new version shows crosses the 1 s soft TTL by itself, with no guess of
    // how long to sleep. Every answer until then is the cached one: no request waited for upstream.
    const answers: ListAnswer[] = [];
    const revalidated = await eventually(async () => {
      const answer = await client.list(module);
      answers.push(answer);
      return answer.versions.length === 2;
    });
    expect(revalidated).toBe(true);
    expect(answers.at(-1)).toEqual({
      versions: ['v1.0.0', 'v2.0.0+incompatible'],
      source: 'cache',
      stale: false,
    });
    for (const answer of answers.slice(0, -1))
      expect(answer).toEqual({ versions: ['v1.0.0'], source: 'cache', stale: false });
    expect(upstream.requestCount(`/${escapePath(module)}/@v/list`)).toBe(2);
    expect(lathens.composition.worker?.processedJobs).toBeGreaterThanOrEqual(1);

    const metrics = await (await fetch(`${lathens.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/lathens_upstream_calls_total\{kind="list",result="ok"\} \d+/);
    expect(metrics).toMatch(/lathens_answers_total\{kind="list",outcome="revalidating"\} [1-9]/);
    expect(metrics).toMatch(/lathens_revalidations_total\{result="ok"\} [1-9]/);
    expect(metrics).toMatch(/lathens_grpc_server_handled_total\{method="List",code="OK"\} [1-9]/);
    expect(metrics).toContain(
      `lathens_upstream_requests_total{upstream="goproxy",host="${new URL(upstream.url).host}",method="list",result="ok"}`,
    );
  });

  it('recovers when Redis restarts: ready again, cached again, without a restart of its own', async () => {
    expect((await fetch(`${lathens.httpUrl}/readyz`)).status).toBe(200);
    await redis.restart();
    const module = 'example.test/after-restart/lib';
    await publish(module, ['v0.1.0']);
    expect(await eventually(async () => (await fetch(`${lathens.httpUrl}/readyz`)).status === 200)).toBe(
      true,
    );
    expect(await eventually(async () => (await client.list(module)).source === 'cache')).toBe(true);
    expect(await client.serving()).toBe(true);
  });

  it('shuts down gracefully: not ready, then closed', async () => {
    const closing = lathens.shutdown();
    await closing;
    await expect(fetch(`${lathens.httpUrl}/healthz`)).rejects.toThrow();
    expect(await client.serving()).toBe(false);
  });
});
