import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MemoryStorage } from '@modproxy/storage';
import { ManualClock, waitUntil } from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { CachedVersions, type AnswerOutcome, type CachedVersionsOptions } from './cached-versions';
import type { ListAnswer } from './versions-provider';
import { InProcessRevalidationQueue } from './in-process-revalidation-queue';
import { MemoryVersionStore } from './memory-version-store';
import { eventually, GoproxyFixture, infoJson, storeVersion } from './test-support/goproxy-fixture';

describe('CachedVersions over the embedded store', () => {
  let upstream: GoproxyFixture;
  let storage: MemoryStorage;
  let engine: CachedVersions;
  // TTLs run on this clock, which the tests move instead of sleeping.
  let clock: ManualClock;
  let outcomes: AnswerOutcome[];
  let staleServed: number;
  let counter = 0;
  let module: string;

  beforeAll(async () => {
    upstream = await GoproxyFixture.start();
  });
  afterAll(async () => {
    await upstream?.stop();
  });
  beforeEach(async () => {
    storage = new MemoryStorage();
    clock = new ManualClock();
    outcomes = [];
    staleServed = 0;
    counter += 1;
    module = `example.test/embedded${counter}/Mod`;
    await upstream.proxy.setMode('ok');
  });
  afterEach(async () => {
    await engine?.close();
    await storage.close();
  });

  function start(options: Partial<CachedVersionsOptions> = {}): CachedVersions {
    engine = new CachedVersions({
      store: new MemoryVersionStore({ now: clock.now }),
      storage,
      now: clock.now,
      upstream: new GoproxyUpstream({ url: upstream.url, timeoutMs: 2_000 }),
      softTtlMs: 60_000,
      hardTtlMs: 120_000,
      events: {
        answered: (_kind, outcome) => outcomes.push(outcome),
        servedStale: () => {
          staleServed += 1;
        },
      },
      ...options,
    });
    return engine;
  }

  it('asks upstream once for many concurrent requests, then answers from the cache', async () => {
    await upstream.publish(module, ['v1.1.0', 'v1.0.0', 'v1.10.0', 'v1.2.0']);
    await upstream.proxy.setMode('slow', { slowDelayMs: 100 });
    start();
    const answers = await Promise.all(Array.from({ length: 200 }, () => engine.list(module)));
    expect(upstream.listCalls(module)).toBe(1);
    for (const answer of answers) expect(answer.versions).toEqual(['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.10.0']);
    expect(answers.filter((answer) => answer.source === 'upstream')).toHaveLength(200);

    const again = await engine.list(module);
    expect(again).toEqual({
      versions: ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.10.0'],
      source: 'cache',
      stale: false,
    });
    const latest = await engine.latest(module);
    expect(JSON.parse(latest.info.toString())).toEqual({ Version: 'v1.2.0', Time: '2024-01-02T03:04:05Z' });
    expect(await engine.latest(module)).toMatchObject({ source: 'cache', stale: false });
    expect(upstream.latestCalls(module)).toBe(1);
    expect(upstream.listCalls(module)).toBe(1);
  });

  it('serves a stale answer at once and revalidates it once in the background', async () => {
    await upstream.publish(module, ['v1.0.0']);
    start({ softTtlMs: 100, hardTtlMs: 60_000 });
    await engine.list(module);
    await upstream.publish(module, ['v1.0.0', 'v1.1.0']);
    // Upstream answers nothing until released: whatever is answered meanwhile did not wait for it.
    await upstream.proxy.setMode('hold');
    clock.advance(150);

    let answered: ListAnswer[] | undefined;
    const requests = Promise.all(Array.from({ length: 100 }, () => engine.list(module))).then(
      (answers) => (answered = answers),
    );
    await waitUntil(() => answered !== undefined, { what: 'the stale answers are served' });
    await waitUntil(() => upstream.proxy.heldRequests === 1, { what: 'the revalidation asks upstream' });
    for (const answer of await requests)
      expect(answer).toEqual({ versions: ['v1.0.0'], source: 'cache', stale: false });
    expect(outcomes.filter((outcome) => outcome === 'revalidating')).toHaveLength(100);

    upstream.proxy.releaseHeld();
    expect(await eventually(async () => (await engine.list(module)).versions.length === 2)).toBe(true);
    expect(upstream.listCalls(module)).toBe(2);
  });

  it('waits for a refresh once the hard TTL has passed', async () => {
    await upstream.publish(module, ['v1.0.0']);
    start({ softTtlMs: 50, hardTtlMs: 100 });
    await engine.list(module);
    await upstream.publish(module, ['v1.0.0', 'v2.0.0+incompatible']);
    clock.advance(150);
    expect(await engine.list(module)).toEqual({
      versions: ['v1.0.0', 'v2.0.0+incompatible'],
      source: 'upstream',
      stale: false,
    });
    expect(upstream.listCalls(module)).toBe(2);
  });

  it('revalidates only answers requested since they went stale, within the revalidation window', async () => {
    await upstream.publish(module, ['v1.0.0']);
    const queued: string[] = [];
    // A queue that only records: the test runs the revalidations itself, when it wants.
    const queue = new InProcessRevalidationQueue({ revalidate: async (name) => void queued.push(name) });
    start({ softTtlMs: 50, hardTtlMs: 60_000, revalidateWindowMs: 150, queue });
    await engine.list(module);
    await engine.latest(module);
    clock.advance(80);
    await engine.revalidate(module);
    expect(upstream.listCalls(module)).toBe(1);

    await engine.list(module);
    expect(await eventually(() => queued.length === 1)).toBe(true);
    expect(queued).toEqual([module]);
    clock.advance(200);
    await engine.revalidate(module);
    expect(upstream.listCalls(module)).toBe(1);

    await engine.list(module);
    await engine.revalidate(module);
    expect(upstream.listCalls(module)).toBe(2);
    // latest went stale too, but nobody asked for it since.
    expect(upstream.latestCalls(module)).toBe(1);
    await queue.close();
  });

  it('caches "not found" for the negative TTL only', async () => {
    start({ negativeTtlMs: 200 });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => engine.list(module)));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect(isModuleError(result.status === 'rejected' ? result.reason : undefined, 'not-found')).toBe(true);
    }
    await expect(engine.list(module)).rejects.toMatchObject({ kind: 'not-found' });
    expect(upstream.listCalls(module)).toBe(1);

    await upstream.publish(module, ['v0.1.0']);
    clock.advance(199);
    await expect(engine.list(module)).rejects.toMatchObject({ kind: 'not-found' });
    expect(upstream.listCalls(module)).toBe(1);
    clock.advance(1);
    expect((await engine.list(module)).versions).toEqual(['v0.1.0']);
    expect(upstream.listCalls(module)).toBe(2);
  });

  it('serves the last answer, marked stale, while upstream is down, and refreshes when it is back', async () => {
    await upstream.publish(module, ['v1.0.0']);
    start({ softTtlMs: 50, hardTtlMs: 100, failureTtlMs: 200 });
    await engine.list(module);
    await engine.latest(module);
    await upstream.proxy.setMode('down');
    clock.advance(150);

    expect(await engine.list(module)).toEqual({ versions: ['v1.0.0'], source: 'cache', stale: true });
    expect(await engine.latest(module)).toMatchObject({ source: 'cache', stale: true });
    expect(await engine.list(module)).toEqual({ versions: ['v1.0.0'], source: 'cache', stale: true });
    expect(staleServed).toBe(3);

    await upstream.publish(module, ['v1.0.0', 'v1.0.1']);
    await upstream.proxy.setMode('ok');
    // Until the failure record ends, the fallback answers without asking upstream again.
    clock.advance(199);
    expect(await engine.list(module)).toEqual({ versions: ['v1.0.0'], source: 'cache', stale: true });
    clock.advance(1);
    expect(await engine.list(module)).toEqual({
      versions: ['v1.0.0', 'v1.0.1'],
      source: 'upstream',
      stale: false,
    });
  });

  it('with nothing cached, falls back to storage when upstream fails; strict mode fails instead', async () => {
    await storeVersion(storage, module, 'v1.0.0');
    await upstream.proxy.setMode('500');
    start();
    expect(await engine.list(module)).toEqual({ versions: ['v1.0.0'], source: 'storage', stale: true });
    const latest = await engine.latest(module);
    expect(latest).toMatchObject({ source: 'storage', stale: true });
    expect(JSON.parse(latest.info.toString()).Version).toBe('v1.0.0');
    await engine.close();

    start({ networkMode: 'strict', store: new MemoryVersionStore() });
    await expect(engine.list(module)).rejects.toMatchObject({ kind: 'bad-gateway' });
  });

  it('merges stored versions into upstream lists, never lists pseudo-versions, and lets storage answer what upstream lacks', async () => {
    await upstream.publish(module, ['v1.0.0']);
    await storeVersion(storage, module, 'v0.9.0');
    await storeVersion(storage, module, 'v0.0.0-20240101000000-abcdefabcdef');
    start();
    expect((await engine.list(module)).versions).toEqual(['v0.9.0', 'v1.0.0']);

    const privateModule = `${module}/private`;
    await storeVersion(storage, privateModule, 'v3.0.0');
    expect(await engine.list(privateModule)).toEqual({
      versions: ['v3.0.0'],
      source: 'storage',
      stale: false,
    });
    expect(JSON.parse((await engine.latest(privateModule)).info.toString()).Version).toBe('v3.0.0');
  });

  it('shows an observed version at once, and refreshes latest when the version beats it', async () => {
    await upstream.publish(module, ['v1.0.0']);
    start();
    await engine.list(module);
    await engine.latest(module);
    await upstream.publish(module, ['v1.0.0', 'v1.1.0']);

    await storeVersion(storage, module, 'v1.1.0');
    await engine.observe(module, 'v1.1.0');
    await engine.observe(module, 'v0.0.0-20240101000000-abcdefabcdef');
    expect(await engine.list(module)).toEqual({
      versions: ['v1.0.0', 'v1.1.0'],
      source: 'cache',
      stale: false,
    });
    const latest = await engine.latest(module);
    expect(JSON.parse(latest.info.toString()).Version).toBe('v1.1.0');
    expect(upstream.listCalls(module)).toBe(1);
    expect(upstream.latestCalls(module)).toBe(2);

    // An older version changes nothing about latest.
    await storeVersion(storage, module, 'v0.5.0');
    await engine.observe(module, 'v0.5.0');
    expect((await engine.latest(module)).source).toBe('cache');
    expect((await engine.list(module)).versions).toEqual(['v0.5.0', 'v1.0.0', 'v1.1.0']);
    await expect(engine.observe(module, 'v1.2')).rejects.toMatchObject({ kind: 'invalid-argument' });
  });

  it('refuses to observe a version that storage does not hold, and lists nothing for it', async () => {
    await upstream.publish(module, ['v1.0.0']);
    start();
    await engine.list(module);
    await expect(engine.observe(module, 'v1.99.0')).rejects.toMatchObject({ kind: 'not-found' });
    expect((await engine.list(module)).versions).toEqual(['v1.0.0']);
    expect(JSON.parse((await engine.latest(module)).info.toString()).Version).toBe('v1.0.0');
  });

  it('makes an observed version of a negatively cached module findable', async () => {
    start();
    await expect(engine.list(module)).rejects.toMatchObject({ kind: 'not-found' });
    await storeVersion(storage, module, 'v0.1.0');
    await engine.observe(module, 'v0.1.0');
    expect((await engine.list(module)).versions).toEqual(['v0.1.0']);
  });

  it('asks upstream again after invalidate', async () => {
    await upstream.publish(module, ['v1.0.0']);
    start();
    await engine.list(module);
    await upstream.publish(module, ['v1.0.0', 'v1.3.0']);
    await engine.invalidate(module);
    expect(await engine.list(module)).toMatchObject({ versions: ['v1.0.0', 'v1.3.0'], source: 'upstream' });
  });

  it('offline: answers from storage only, never asking upstream', async () => {
    await upstream.publish(module, ['v1.0.0']);
    await storeVersion(storage, module, 'v0.2.0');
    start({ networkMode: 'offline' });
    expect(await engine.list(module)).toEqual({ versions: ['v0.2.0'], source: 'storage', stale: false });
    expect(JSON.parse((await engine.latest(module)).info.toString())).toEqual(JSON.parse(infoJson('v0.2.0')));
    await expect(engine.list(`${module}/other`)).rejects.toMatchObject({ kind: 'not-found' });
    expect(upstream.listCalls(module) + upstream.latestCalls(module)).toBe(0);
  });

  it('lets a cancelled caller go while the shared refresh goes on for the others', async () => {
    await upstream.publish(module, ['v1.0.0']);
    await upstream.proxy.setMode('hold');
    start();
    const controller = new AbortController();
    const cancelled = engine.list(module, { signal: controller.signal });
    const patient = engine.list(module);
    await waitUntil(() => upstream.proxy.heldRequests === 1, { what: 'the shared refresh asks upstream' });
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ kind: 'cancelled' });
    upstream.proxy.releaseHeld();
    expect((await patient).versions).toEqual(['v1.0.0']);
    expect(upstream.listCalls(module)).toBe(1);
  });
});
