import { describe, expect, it } from 'vitest';
import { ManualClock } from '@modproxy/testing';
import { describeVersionStoreConformance } from './conformance/version-store-conformance';
import { MemoryVersionStore } from './memory-version-store';

describeVersionStoreConformance('MemoryVersionStore', async (retention, now) => ({
  store: new MemoryVersionStore({ ...retention, now }),
  usesClock: true,
}));

describe('MemoryVersionStore bounds', () => {
  it('keeps at most maxEntries answers, dropping the least recently used', async () => {
    const store = new MemoryVersionStore({ maxEntries: 3 });
    for (const name of ['a', 'b', 'c'])
      await store.saveAnswer('list', `example.test/${name}`, Buffer.from('v1.0.0'), 1);
    await store.read('list', 'example.test/a');
    await store.saveAnswer('list', 'example.test/d', Buffer.from('v1.0.0'), 1);
    expect((await store.read('list', 'example.test/a')).answer).toBeDefined();
    expect((await store.read('list', 'example.test/b')).answer).toBeUndefined();
    expect((await store.read('list', 'example.test/d')).answer).toBeDefined();
  });
});

describe('MemoryVersionStore time', () => {
  it('ends every entry exactly at its TTL on the clock it was given', async () => {
    const clock = new ManualClock();
    const store = new MemoryVersionStore({ now: clock.now, retainMs: 1_000, observedTtlMs: 1_000 });
    const module = 'example.test/clocked';
    await store.saveAnswer('list', module, Buffer.from('v1.0.0'), clock.now());
    await store.observe(module, 'v1.0.0');
    await store.saveNotFound('latest', module, { kind: 'not-found', message: 'not found' }, 1_000);
    await store.saveFailure('list', module, { at: clock.now(), kind: 'timeout', message: 'slow' }, 1_000);
    expect(await store.acquireLease('latest', module, 'holder', 1_000)).toBe(true);

    clock.advance(999);
    expect(await store.read('list', module)).toMatchObject({
      answer: { data: Buffer.from('v1.0.0') },
      failure: { kind: 'timeout' },
      observed: ['v1.0.0'],
    });
    expect(await store.read('latest', module)).toMatchObject({
      notFound: { kind: 'not-found', message: 'not found' },
      leased: true,
    });

    clock.advance(1);
    expect(await store.read('list', module)).toEqual({ observed: [], leased: false });
    expect(await store.read('latest', module)).toEqual({ observed: [], leased: false });
    expect(await store.acquireLease('latest', module, 'next', 1_000)).toBe(true);
  });
});
