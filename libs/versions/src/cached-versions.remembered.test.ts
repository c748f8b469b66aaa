import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@modproxy/storage';
import {
  createTempDir,
  type HostileUpstream,
  ManualClock,
  removeDir,
  startHostileUpstream,
  startRedisServer,
  type RedisServer,
  moduleErrorOf,
} from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { CachedVersions } from './cached-versions';
import { MemoryVersionStore } from './memory-version-store';
import { createCacheRedis, waitForRedis } from './redis-connection';
import { RedisVersionStore } from './redis-version-store';
import type { VersionStore } from './version-store';

const RETRY_AFTER_SECONDS = 120;

/**
 * What a remembered upstream answer says while it is remembered: the failure record and the
 * negative entry answer later requests without asking upstream, and must answer them as
 * upstream did (kind, Retry-After, detail), on the embedded store and on Redis.
 */
describe('CachedVersions answers remembered failures as upstream gave them', () => {
  let dir: string;
  let upstream: HostileUpstream;
  let redisServer: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    dir = await createTempDir('remembered-upstream-');
    upstream = await startHostileUpstream({ dir, retryAfterSeconds: RETRY_AFTER_SECONDS });
    redisServer = await startRedisServer();
    redis = createCacheRedis(redisServer.url);
    await waitForRedis(redis);
  });
  afterAll(async () => {
    redis?.disconnect();
    await redisServer?.stop();
    await upstream?.close();
    if (dir) await removeDir(dir);
  });

  const stores: Array<[string, (clock: ManualClock) => VersionStore]> = [
    ['the embedded store', (clock) => new MemoryVersionStore({ now: clock.now })],
    ['Redis', () => new RedisVersionStore({ redis, keyPrefix: `t${randomUUID().slice(0, 8)}:` })],
  ];

  const engineOver = (store: VersionStore, clock: ManualClock, url: string) =>
    new CachedVersions({
      store,
      storage: new MemoryStorage(),
      now: clock.now,
      upstream: new GoproxyUpstream({ url, timeoutMs: 5_000 }),
      networkMode: 'strict',
      failureTtlMs: 600_000,
      negativeTtlMs: 600_000,
    });

  it.each(stores)(
    'on %s: a remembered 429 keeps its kind, its Retry-After (counted down) and its detail, on list and latest',
    async (_name, storeOf) => {
      const clock = new ManualClock();
      const engine = engineOver(storeOf(clock), clock, upstream.urlFor('status-429'));
      try {
        const module = `example.test/busy${randomUUID().slice(0, 8)}/lib`;
        for (const ask of [() => engine.list(module), () => engine.latest(module)]) {
          const first = await moduleErrorOf(ask());
          expect([first.kind, first.retryAfterSeconds]).toEqual(['bad-gateway', RETRY_AFTER_SECONDS]);
          const calls = upstream.requestCount();
          clock.advance(30_000);
          const remembered = await moduleErrorOf(ask());
          expect(upstream.requestCount()).toBe(calls);
          expect({
            kind: remembered.kind,
            message: remembered.message,
            retryAfterSeconds: remembered.retryAfterSeconds,
            detail: remembered.detail,
          }).toEqual({
            kind: first.kind,
            message: first.message,
            retryAfterSeconds: RETRY_AFTER_SECONDS - 30,
            detail: first.detail,
          });
          expect(remembered.detail).toContain('429');
          // Past its Retry-After while still remembered: retry in a second, never "now" or a negative.
          clock.advance(RETRY_AFTER_SECONDS * 1_000);
          expect((await moduleErrorOf(ask())).retryAfterSeconds).toBe(1);
        }
      } finally {
        await engine.close();
      }
    },
  );

  it.each(stores)('on %s: a remembered 410 is answered 410 (gone), not 404', async (_name, storeOf) => {
    const clock = new ManualClock();
    const engine = engineOver(storeOf(clock), clock, upstream.urlFor('status-410'));
    try {
      const module = `example.test/gone${randomUUID().slice(0, 8)}/lib`;
      for (const ask of [() => engine.list(module), () => engine.latest(module)]) {
        const first = await moduleErrorOf(ask());
        expect(first.kind).toBe('gone');
        const calls = upstream.requestCount();
        const remembered = await moduleErrorOf(ask());
        expect(upstream.requestCount()).toBe(calls);
        expect([remembered.kind, remembered.message, remembered.detail]).toEqual([
          'gone',
          first.message,
          first.detail,
        ]);
      }
    } finally {
      await engine.close();
    }
  });
});
