import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskStorage } from '@modproxy/storage';
import {
  type AppProcess,
  bundleApp,
  createFixtureModules,
  createTempDir,
  exportFixturesAsGoproxy,
  type FixtureModules,
  removeDir,
  startAppProcess,
  type StaticGoproxy,
  startOtlpReceiver,
  startStaticGoproxy,
  waitUntil,
} from '@modproxy/testing';

const ZIP_BYTES = 16 * 1024 * 1024;

/** The worker processes of a cluster primary. */
function workerPids(primary: AppProcess): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(primary.child.pid)], {
    encoding: 'utf8',
  }).stdout;
  return out
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => pid > 0);
}

/** GET on a connection of its own (the primary hands new connections to the workers in turn). */
async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { headers: { connection: 'close' } });
  return { status: response.status, body: await response.text() };
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

/** WORKERS=2: a primary and two workers, as the built bundle runs them. */
describe('WORKERS=2 (the built proxy, disk storage, a static fixture GOPROXY upstream)', () => {
  let fixtures: FixtureModules;
  let sandbox: string;
  let upstream: StaticGoproxy;
  let main: string;

  beforeAll(async () => {
    main = await bundleApp('proxy', 'proxy-workers');
    fixtures = await createFixtureModules();
    sandbox = await createTempDir('proxy-workers-');
    await mkdir(join(sandbox, 'upstream'));
    await exportFixturesAsGoproxy(fixtures, join(sandbox, 'upstream'), { modules: [fixtures.hello] });
    upstream = await startStaticGoproxy(join(sandbox, 'upstream'));
  });

  afterAll(async () => {
    await upstream?.stop();
    await fixtures?.close();
    if (sandbox) await removeDir(sandbox);
  });

  async function start(
    name: string,
    env: Record<string, string> = {},
  ): Promise<{ proxy: AppProcess; url: string; storage: string }> {
    const dir = await createTempDir(`${name}-`, sandbox);
    for (const sub of ['storage', 'tmp', 'home']) await mkdir(join(dir, sub));
    const proxy = await startAppProcess(main, {
      cwd: dir,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: join(dir, 'home'),
        TMPDIR: join(dir, 'tmp'),
        PORT: '0',
        STORAGE_DIR: join(dir, 'storage'),
        UPSTREAM: upstream.url,
        LOG_LEVEL: 'warn',
        WORKERS: '2',
        ...env,
      },
      ready: /export GOPROXY=(\S+)/,
    });
    return { proxy, url: proxy.match[1] ?? '', storage: join(dir, 'storage') };
  }

  it('serves from two workers, replaces one that dies, counts every request once, and stops all with exit 0', async () => {
    const { proxy, url } = await start('lifecycle');
    try {
      await waitUntil(() => workerPids(proxy).length === 2, { what: 'two workers run' });
      const [dead] = workerPids(proxy);
      process.kill(dead ?? 0, 'SIGKILL');
      await waitUntil(() => workerPids(proxy).length === 2 && !workerPids(proxy).includes(dead ?? 0), {
        what: 'the dead worker is replaced',
      });
      const workersListening = async () =>
        metricValue((await get(`${url}/metrics`)).body, 'modproxy_workers');
      await waitUntil(async () => (await workersListening()) === 2, {
        what: 'the replacement listens',
        timeoutMs: 30_000,
      });
      for (let i = 0; i < 8; i++) expect((await get(`${url}/healthz`)).status).toBe(200);
      const metrics = (await get(`${url}/metrics`)).body;
      // Eight health checks over fresh connections, whichever worker took each: all counted.
      expect(
        metricValue(metrics, 'modproxy_http_requests_total{route="healthz",method="GET",status="200"}'),
      ).toBe(8);
      expect(metricValue(metrics, 'modproxy_worker_restarts_total')).toBe(1);
      expect(proxy.stdout().match(/export GOPROXY=/g)).toHaveLength(1);
    } finally {
      const workers = workerPids(proxy);
      expect(await proxy.stop()).toBe(0);
      for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it('asks upstream for a list once for every worker (one embedded cache, in the primary)', async () => {
    const { proxy, url } = await start('one-cache');
    try {
      const path = `/${fixtures.hello.escapedPath}/@v/list`;
      const answers = await Promise.all(Array.from({ length: 12 }, () => get(`${url}${path}`)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(12).fill(200));
      expect(new Set(answers.map((answer) => answer.body))).toEqual(
        new Set([fixtures.hello.versions.map((version) => `${version}\n`).join('')]),
      );
      expect(upstream.requestCount(path)).toBe(1);
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });

  it('keeps a cold .zip in one trace across processes: the worker’s request, the primary’s fetch from upstream', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const { proxy, url } = await start('trace', {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      });
      const path = `/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`;
      const response = await fetch(`${url}${path}`, { headers: { 'x-request-id': 'cold-zip-workers' } });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      // Every process flushes its spans as it stops.
      expect(await proxy.stop()).toBe(0);
      const spans = receiver.spans();
      const requests = spans.filter(
        (span) => span.kind === 'server' && span.attributes['modproxy.request_id'] === 'cold-zip-workers',
      );
      expect(requests.map((span) => `${span.name} root=${span.parentSpanId === ''}`)).toEqual([
        'GET zip root=true',
      ]);
      const trace = spans.filter((span) => span.traceId === requests[0]?.traceId);
      // The primary's calls to upstream for the version, under the request that missed.
      const upstreamCalls = trace.filter((span) => span.kind === 'client');
      // The primary's fetch is a span of the request's trace, and upstream's calls are under it.
      const primaryFetch = trace.find((span) => span.name === 'primary fetch');
      expect(primaryFetch?.attributes['modproxy.version']).toBe('v1.0.0');
      expect(upstreamCalls.length).toBeGreaterThan(0);
      const ids = new Set(trace.map((span) => span.spanId));
      expect(trace.filter((span) => span.parentSpanId !== '' && !ids.has(span.parentSpanId))).toEqual([]);
      // Client spans are made only under a parent: these are the fetch's, in its request's trace.
      expect(spans.filter((span) => span.kind === 'client' && span.traceId !== requests[0]?.traceId)).toEqual(
        [],
      );
    } finally {
      await receiver.close();
    }
  });

  it('finishes a zip download in flight on SIGTERM, in whichever worker serves it, then exits 0', async () => {
    const dir = await createTempDir('drain-storage-', sandbox);
    const storage = await DiskStorage.open({ root: dir });
    const zip = Buffer.alloc(ZIP_BYTES, 7);
    await storage.save({
      module: 'example.com/drain',
      version: 'v1.0.0',
      info: Buffer.from('{"Version":"v1.0.0"}'),
      mod: Buffer.from('module example.com/drain\n'),
      zip: Readable.from([zip]),
    });
    await storage.close();
    const { proxy, url } = await start('drain', { STORAGE_DIR: dir, UPSTREAM: 'off', LOG_LEVEL: 'info' });
    const { hostname, port } = new URL(url);
    const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      request({ hostname, port, path: '/example.com/drain/@v/v1.0.0.zip' }, resolve)
        .on('error', reject)
        .end();
    });
    expect(response.statusCode).toBe(200);
    // The client reads nothing until the shutdown has begun: the download is in flight.
    response.pause();
    const exit = proxy.stop(60_000);
    await waitUntil(() => proxy.stdout().includes('shutting down'), { what: 'the shutdown began' });
    let received = 0;
    response.on('data', (chunk: Buffer) => (received += chunk.length));
    response.resume();
    await once(response, 'end');
    expect(received).toBe(ZIP_BYTES);
    expect(await exit).toBe(0);
  });
});
