import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, startRedisServer, type RedisServer } from '@modproxy/testing';
import { closeQueueConnection } from './close-queue-connection';
import { createQueueRedis } from './redis-connection';

describe('closeQueueConnection (real Redis)', () => {
  let redis: RedisServer;
  let guarded: RedisServer;

  beforeAll(async () => {
    redis = await startRedisServer();
    guarded = await startRedisServer({ password: `right-${randomUUID()}` });
  });
  afterAll(async () => {
    await redis?.stop();
    await guarded?.stop();
  });

  it('closes the clients politely, then QUITs, while Redis answers', async () => {
    const connection = createQueueRedis(redis.url);
    await once(connection, 'ready');
    const told: boolean[] = [];
    const clean = await closeQueueConnection(connection, {
      closeClients: async (force) => {
        told.push(force);
        // A write still goes through: the clients were closed while Redis was there.
        await connection.set(`closing-${randomUUID()}`, '1');
      },
    });
    expect([clean, told]).toEqual([true, [false]]);
    await expect.poll(() => connection.status).toBe('end');
  });

  it('stops waiting after graceMs when the polite close hangs, and drops the connection', async () => {
    const connection = createQueueRedis(redis.url);
    await once(connection, 'ready');
    let blocked: Promise<unknown> | undefined;
    const clean = await closeQueueConnection(connection, {
      graceMs: 200,
      // A blocking read nobody will ever answer: a worker waiting for its loop.
      closeClients: async () => {
        blocked = connection.blpop(`never-${randomUUID()}`, 0);
        await blocked;
      },
    });
    expect(clean).toBe(false);
    await expect.poll(() => connection.status).toBe('end');
    await expect(blocked).rejects.toThrow(/Connection is closed/);
  });

  it.each([
    ['unreachable (a closed loopback port)', async () => `redis://127.0.0.1:${await getFreePort()}`],
    ['refusing the password', async () => `redis://:wrong-password@127.0.0.1:${guarded.port}`],
  ])('does not wait at all for a Redis %s, and tells the clients to force', async (_what, url) => {
    const connection = createQueueRedis(await url());
    // Commands queued for a reconnection that never comes: QUIT would wait behind them for ever.
    const queued = connection.get('anything');
    let forced: boolean | undefined;
    const clean = await closeQueueConnection(connection, {
      closeClients: async (force) => {
        forced = force;
        await queued;
      },
    });
    expect([clean, forced]).toEqual([false, true]);
    queued.catch(() => undefined);
  });
});
