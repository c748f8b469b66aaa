import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@modproxy/storage';
import { ManualClock, waitUntil } from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { CachedVersions } from './cached-versions';
import { MemoryVersionStore } from './memory-version-store';
import { GoproxyFixture } from './test-support/goproxy-fixture';

describe('CachedVersions tells of coalesced waits', () => {
  let upstream: GoproxyFixture;
  const engines: CachedVersions[] = [];

  beforeAll(async () => {
    upstream = await GoproxyFixture.start();
  });
  afterAll(async () => {
    for (const engine of engines) await engine.close();
    await upstream?.stop();
  });

  it('counts requests that joined a refresh in this process and refreshes that waited for another replica', async () => {
    const module = 'example.test/coalesced/mod';
    const clock = new ManualClock();
    const store = new MemoryVersionStore({ now: clock.now });
    const waits: string[] = [];
    const replica = () => {
      const engine = new CachedVersions({
        store,
        storage: new MemoryStorage(),
        now: clock.now,
        upstream: new GoproxyUpstream({ url: upstream.url, timeoutMs: 5_000 }),
        events: { coalesced: (kind, scope) => waits.push(`${kind} ${scope}`) },
      });
      engines.push(engine);
      return engine;
    };
    const [a, b] = [replica(), replica()];
    await upstream.publish(module, ['v1.0.0']);
    await upstream.proxy.setMode('hold');
    const first = a.list(module);
    await waitUntil(() => upstream.proxy.heldRequests === 1, { what: 'the first refresh reached upstream' });
    // Two more on replica a join its refresh; one on replica b finds a's lease and waits for it.
    const joined = [a.list(module), a.list(module)];
    const other = b.list(module);
    await waitUntil(() => waits.length === 3, { what: 'three coalesced waits' });
    await upstream.proxy.setMode('ok');
    for (const answer of await Promise.all([first, ...joined, other]))
      expect(answer.versions).toEqual(['v1.0.0']);
    expect(upstream.listCalls(module)).toBe(1);
    expect(waits.sort()).toEqual(['list process', 'list process', 'list replica']);
  });
});
