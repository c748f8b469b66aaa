import { afterAll, beforeAll } from 'vitest';
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
