import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MemoryStorage } from '@modproxy/storage';
import { ManualClock, waitUntil } from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { CachedVersions } from './cached-versions';
import { MemoryVersionStore } from './memory-version-store';
import { GoproxyFixture } from './test-support/goproxy-fixture';

describe('CachedVersions.refreshList (a crawler saw new tags)', () => {
  let upstream: GoproxyFixture;
  let counter = 0;
  let module: string;
  let clock: ManualClock;
  let store: MemoryVersionStore;
  const engines: CachedVersions[] = [];

  beforeAll(async () => {
    upstream = await GoproxyFixture.start();
  });
  afterAll(async () => {
    for (const engine of engines) await engine.close();
    await upstream?.stop();
  });
  beforeEach(async () => {
    counter += 1;
    module = `example.test/refresh${counter}/mod`;
    clock = new ManualClock();
    store = new MemoryVersionStore({ now: clock.now });
    await upstream.proxy.setMode('ok');
  });

  /** A replica: its own engine over the store every replica shares. */
  function replica(): CachedVersions {
    const engine = new CachedVersions({
      store,
      storage: new MemoryStorage(),
      now: clock.now,
      upstream: new GoproxyUpstream({ url: upstream.url, timeoutMs: 5_000 }),
      softTtlMs: 60_000,
      hardTtlMs: 120_000,
    });
    engines.push(engine);
    return engine;
  }

  it('asks upstream now although the cached list is fresh, and every replica then lists the new version', async () => {
    const [a, b] = [replica(), replica()];
    await upstream.publish(module, ['v1.0.0']);
    expect((await a.list(module)).versions).toEqual(['v1.0.0']);
    await upstream.publish(module, ['v1.0.0', 'v1.1.0']);
    // Fresh in the cache: a list does not ask upstream.
    expect((await b.list(module)).versions).toEqual(['v1.0.0']);
    expect(upstream.listCalls(module)).toBe(1);

    expect(await a.refreshList(module)).toEqual({
      versions: ['v1.0.0', 'v1.1.0'],
      source: 'upstream',
      stale: false,
    });
    expect(upstream.listCalls(module)).toBe(2);
    expect(await b.list(module)).toEqual({ versions: ['v1.0.0', 'v1.1.0'], source: 'cache', stale: false });
    expect(upstream.listCalls(module)).toBe(2);
  });

  it('drops a cached "not found" first', async () => {
    const engine = replica();
    const missing = await engine.list(module).catch((error: unknown) => error);
    expect(isModuleError(missing, 'not-found')).toBe(true);
    await upstream.publish(module, ['v0.1.0']);
    expect(isModuleError(await engine.list(module).catch((error: unknown) => error), 'not-found')).toBe(true);
    expect((await engine.refreshList(module)).versions).toEqual(['v0.1.0']);
    expect((await engine.list(module)).versions).toEqual(['v0.1.0']);
  });

  it('shares one upstream call among overlapping refreshes of replicas', async () => {
    const replicas = [replica(), replica(), replica()];
    await upstream.publish(module, ['v1.0.0', 'v2.0.0']);
    await upstream.proxy.setMode('hold');
    const refreshes = replicas.flatMap((engine) => [engine.refreshList(module), engine.refreshList(module)]);
    await waitUntil(() => upstream.proxy.heldRequests === 1, { what: 'the first refresh reached upstream' });
    // The others wait on the lease of the one in flight (polling the store) instead of asking too.
    await upstream.proxy.setMode('ok');
    const answers = await Promise.all(refreshes);
    for (const answer of answers) expect(answer.versions).toEqual(['v1.0.0', 'v2.0.0']);
    expect(upstream.listCalls(module)).toBe(1);
  });
});
