import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFixtureModules,
  createTempDir,
  describeGoCommandScenarios,
  exportFixturesAsGoproxy,
  type FixtureModules,
  removeDir,
  snapshotTree,
  type StaticGoproxy,
  startStaticGoproxy,
  waitUntil,
} from '@modproxy/testing';
import { startTestProxy, TEST_WORKERS, type TestProxy } from './test-support/test-proxy';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const shape = TEST_WORKERS > 1 ? `, ${TEST_WORKERS} workers` : '';

describeGoCommandScenarios(`embedded: disk storage, direct VCS upstream${shape}`, async (fixtures) => {
  // Storage and the go command's work directories in one sandbox, checked whole by the scenarios.
  const sandbox = await createTempDir('proxy-e2e-sandbox-');
  const storageDir = join(sandbox, 'storage');
  const workDir = join(sandbox, 'go-work');
  await mkdir(workDir);
  const proxy = await startTestProxy(
    { STORAGE_DIR: storageDir, UPSTREAM: 'direct', GO_WORK_DIR: workDir },
    fixtures.directEnv,
    'proxy-e2e',
  );
  return {
    url: proxy.url,
    snapshot: () => snapshotTree(storageDir),
    sandbox: [sandbox],
    stop: async () => {
      await proxy.shutdown();
      await removeDir(sandbox);
    },
  };
});

describe(`fetch coalescing (static upstream GOPROXY${shape})`, () => {
  let fixtures: FixtureModules;
  let upstreamDir: string;
  let storageDir: string;
  let upstream: StaticGoproxy;
  let proxy: TestProxy;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    upstreamDir = await createTempDir('proxy-e2e-upstream-');
    storageDir = await createTempDir('proxy-e2e-storage-');
    await exportFixturesAsGoproxy(fixtures, upstreamDir, { modules: [fixtures.hello] });
    upstream = await startStaticGoproxy(upstreamDir);
    proxy = await startTestProxy({ STORAGE_DIR: storageDir, UPSTREAM: upstream.url }, {}, 'proxy-e2e');
  });

  afterAll(async () => {
    await proxy?.shutdown();
    await upstream?.stop();
    await removeDir(upstreamDir);
    await removeDir(storageDir);
    await fixtures?.close();
  });

  it('fetches an uncached version from upstream exactly once for 50 concurrent requests', async () => {
    const path = `/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`;
    // The fixture's own zip, as the upstream serves it: every client must get exactly these bytes.
    const fixtureZip = await readFile(join(upstreamDir, fixtures.hello.escapedPath, '@v', 'v1.0.0.zip'));
    expect(fixtureZip.length).toBeGreaterThan(0);
    const responses = await Promise.all(Array.from({ length: 50 }, () => fetch(`${proxy.url}${path}`)));
    const bodies = await Promise.all(
      responses.map(async (response) => Buffer.from(await response.arrayBuffer())),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
    expect(bodies.map(sha256)).toEqual(Array(50).fill(sha256(fixtureZip)));
    expect(upstream.requestCount(path)).toBe(1);
    const again = await fetch(`${proxy.url}${path}`);
    expect(again.status).toBe(200);
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(sha256(fixtureZip));
    expect(upstream.requestCount(path)).toBe(1);
  });

  it('does not cache a failed fetch: the next request after an outage succeeds', async () => {
    const path = `/${fixtures.hello.escapedPath}/@v/v1.1.0.zip`;
    await upstream.setMode('500');
    const failed = await fetch(`${proxy.url}${path}`);
    expect(failed.status).toBe(502);
    await upstream.setMode('ok');
    const ok = await fetch(`${proxy.url}${path}`);
    expect(ok.status).toBe(200);
  });

  it('keeps answering list and latest, marked stale, while upstream is down', async () => {
    const freshStorage = await createTempDir('proxy-e2e-stale-');
    const fresh = await startTestProxy(
      {
        STORAGE_DIR: freshStorage,
        UPSTREAM: upstream.url,
        VERSIONS_SOFT_TTL_MS: '50',
        VERSIONS_HARD_TTL_MS: '100',
      },
      {},
      'proxy-e2e',
    );
    try {
      const list = `${fresh.url}/${fixtures.hello.escapedPath}/@v/list`;
      const latest = `${fresh.url}/${fixtures.hello.escapedPath}/@latest`;
      const first = await fetch(list);
      expect(first.headers.get('x-modproxy-source')).toBe('upstream');
      const body = await first.text();
      expect(body).toBe(fixtures.hello.versions.map((version) => `${version}\n`).join(''));
      const latestBody = await (await fetch(latest)).text();
      await upstream.setMode('down');
      // The answers are marked stale once they are older than the 100 ms hard TTL and a refresh
      // failed: ask until they are, instead of sleeping for a guess. Each answer meanwhile is
      // the cached one.
      const servedStale = async (url: string, expected: string): Promise<boolean> => {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(await response.text()).toBe(expected);
        return response.headers.get('x-modproxy-stale') === 'true';
      };
      await waitUntil(() => servedStale(list, body), { what: 'the list is served marked stale' });
      await waitUntil(() => servedStale(latest, latestBody), { what: 'latest is served marked stale' });
      const metrics = await (await fetch(`${fresh.url}/metrics`)).text();
      expect(metrics).toMatch(/modproxy_stale_answers_total\{operation="list"\} [1-9]/);
    } finally {
      await upstream.setMode('ok');
      await fresh.shutdown();
      await removeDir(freshStorage);
    }
  });
});
