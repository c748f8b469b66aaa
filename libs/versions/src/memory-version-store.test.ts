import { describe, expect, it } from 'vitest';
import { describeVersionStoreConformance } from './conformance/version-store-conformance';
import { MemoryVersionStore } from './memory-version-store';

describeVersionStoreConformance('MemoryVersionStore', async (retention) => ({
  store: new MemoryVersionStore(retention),
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
