import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { getFreePort, startRedisServer, type RedisServer, moduleErrorOf } from '@modproxy/testing';
import { FetchQueue } from './fetch-queue';
import { RecentModules } from './recent-modules';
import { createQueueRedis } from './redis-connection';

const MODULE = 'example.test/away/lib';
const VERSION = 'v1.0.0';

/**
 * The queue's clients when the queue Redis is not there: its connection waits for a
 * reconnection for ever (BullMQ's `maxRetriesPerRequest: null`), so every wait must have a bound
 * of its own. Each test either never reaches Redis (a closed loopback port) or loses it.
 */
describe('queue clients while the queue Redis is away (real Redis)', () => {
  const connections: Redis[] = [];
  const servers: RedisServer[] = [];

  afterEach(async () => {
    for (const connection of connections.splice(0)) connection.disconnect();
    for (const server of servers.splice(0)) await server.stop();
  });

  const unreachable = async (): Promise<Redis> => {
    const connection = createQueueRedis(`redis://127.0.0.1:${await getFreePort()}`);
    connections.push(connection);
    return connection;
  };

  /** A connection that was ready, to a Redis that is then stopped. */
  const lost = async (): Promise<Redis> => {
    const redis = await startRedisServer();
    servers.push(redis);
    const connection = createQueueRedis(redis.url);
    connections.push(connection);
    await once(connection, 'ready');
    const closed = once(connection, 'close');
    await redis.stop();
    await closed;
    return connection;
  };

  it.each([
    ['unreachable', unreachable],
    ['lost', lost],
  ])(
    'RecentModules.close() resolves with Redis %s, and tells that the last batch was dropped',
    async (_what, connect) => {
      const errors: unknown[] = [];
      const recent = new RecentModules({
        redis: await connect(),
        prefix: `away-${randomUUID().slice(0, 8)}`,
        closeTimeoutMs: 200,
        onError: (error) => errors.push(error),
      });
      recent.touch(MODULE);
      await recent.close();
      expect(errors).toHaveLength(1);
      expect(String(errors[0])).toMatch(/not written within 200 ms/);
    },
  );

  it.each([
    ['unreachable', unreachable],
    ['lost', lost],
  ])(
    'FetchQueue.fetchAndWait answers timeout at its deadline with Redis %s, and close() resolves',
    async (_what, connect) => {
      const queue = new FetchQueue({
        connection: await connect(),
        prefix: `away-${randomUUID().slice(0, 8)}`,
      });
      const failure = await moduleErrorOf(queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 300 }));
      expect([failure.kind, failure.message]).toEqual([
        'timeout',
        `${MODULE}@${VERSION}: not fetched within 300 ms`,
      ]);
      expect(queue.waiters).toBe(0);
      await queue.close();
    },
  );

  it('FetchQueue.fetchAndWait lets a caller leave while the event reader waits for Redis', async () => {
    const queue = new FetchQueue({
      connection: await unreachable(),
      prefix: `away-${randomUUID().slice(0, 8)}`,
    });
    const leaving = new AbortController();
    const left = moduleErrorOf(
      queue.fetchAndWait(MODULE, VERSION, { signal: leaving.signal, timeoutMs: 60_000 }),
    );
    leaving.abort();
    expect((await left).kind).toBe('cancelled');
    await queue.close();
  });
});
