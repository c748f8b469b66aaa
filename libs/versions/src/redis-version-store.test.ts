import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '@modproxy/testing';
import { describeVersionStoreConformance } from './conformance/version-store-conformance';
import { createCacheRedis, waitForRedis } from './redis-connection';
import { RedisVersionStore } from './redis-version-store';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

describeVersionStoreConformance('RedisVersionStore', async (retention) => {
  const redis = createCacheRedis(server.url);
  await waitForRedis(redis);
  const store = new RedisVersionStore({ redis, keyPrefix: 'conformance:', ...retention });
  // Its TTLs are Redis' own (PX): real time, whatever clock the suite has.
  return { store, usesClock: false, cleanup: async () => void (await redis.quit()) };
});

describe('RedisVersionStore across versions of lathens', () => {
  it('reads a negative entry written as a bare message (before its kind was kept) as a 404', async () => {
    const redis = createCacheRedis(server.url);
    try {
      await waitForRedis(redis);
      const store = new RedisVersionStore({ redis, keyPrefix: 'legacy:' });
      // What an older replica's SAVE_NOT_FOUND wrote: the message alone.
      await redis.set('legacy:n:list:{example.test/old}', 'example.test/old: not found', 'PX', 60_000);
      expect((await store.read('list', 'example.test/old')).notFound).toEqual({
        kind: 'not-found',
        message: 'example.test/old: not found',
      });
    } finally {
      redis.disconnect();
    }
  });
});
