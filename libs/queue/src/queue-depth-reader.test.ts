import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, startRedisServer, startTcpRelay, type RedisServer } from '@modproxy/testing';
import { QueueDepthReader } from './queue-depth-reader';
import { createQueueRedis } from './redis-connection';

const STATES = ['waiting', 'delayed', 'failed'] as const;

/**
 * `/metrics` reads the queue depths at scrape time: with a real Redis they are its counts, and
 * with a queue Redis that cannot be used (the queue connection waits for it without end) a read
 * still ends, after its deadline, with nothing to show.
 */
describe('QueueDepthReader (real Redis)', () => {
  let redis: RedisServer;
  let guarded: RedisServer;
  const connections: Redis[] = [];
  const queues: Queue[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    guarded = await startRedisServer({ password: `right-${randomUUID()}` });
  });
  afterEach(async () => {
    // Closing a queue whose Redis is away would wait for it: drop the connections first.
    for (const connection of connections.splice(0)) connection.disconnect();
    await Promise.allSettled(queues.splice(0).map((queue) => queue.close()));
  });
  afterAll(async () => {
    await redis?.stop();
    await guarded?.stop();
  });

  const queueOn = (url: string): Queue => {
    const connection = createQueueRedis(url);
    connections.push(connection);
    const queue = new Queue(`depth-${randomUUID()}`, { connection, prefix: 'depth-test' });
    // A queue Redis refusing the password is what the test is about, not an error to print.
    queue.on('error', () => undefined);
    queues.push(queue);
    return queue;
  };

  it('reads every state, 0 for the ones with no job', async () => {
    const queue = queueOn(redis.url);
    await queue.add('a', {});
    await queue.add('b', {});
    await queue.add('c', {}, { delay: 60_000 });
    const reader = new QueueDepthReader(queue, STATES);
    expect(reader.name).toBe(queue.name);
    expect(await reader.read()).toEqual({ waiting: 2, delayed: 1, failed: 0 });
  });

  it.each([
    ['unreachable (a closed loopback port)', async () => `redis://127.0.0.1:${await getFreePort()}`],
    ['refusing the password', async () => `redis://:wrong-password@127.0.0.1:${guarded.port}`],
  ])('answers nothing after its deadline when the queue Redis is %s', async (_what, url) => {
    const queue = queueOn(await url());
    // Unbounded, as getJobCounts itself is: the read below must end by its own deadline.
    const unbounded = queue.getJobCounts(...STATES).then(
      () => 'answered',
      () => 'failed',
    );
    const reader = new QueueDepthReader(queue, STATES, { deadlineMs: 300 });
    expect(await reader.read()).toBeUndefined();
    expect(
      await Promise.race([unbounded, new Promise((resolve) => setTimeout(resolve, 50, 'waiting'))]),
    ).toBe('waiting');
  });

  it('keeps one read in flight while Redis does not answer, and reads the counts again once it does', async () => {
    // Redis accepts the queue's connection and then holds every byte: the connection stays
    // ready and its commands wait.
    const relay = await startTcpRelay({ targetPort: redis.port });
    const admin = new Redis(redis.port, '127.0.0.1');
    try {
      const queue = queueOn(`redis://127.0.0.1:${relay.port}`);
      await queue.add('a', {});
      const reader = new QueueDepthReader(queue, STATES, { deadlineMs: 300 });
      expect(await reader.read()).toEqual({ waiting: 1, delayed: 0, failed: 0 });
      await admin.config('RESETSTAT');

      relay.stall();
      // Three scrapes during the stall: each ends at its deadline, and they share one read.
      expect([await reader.read(), await reader.read(), await reader.read()]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
      relay.resume();
      await expect.poll(() => reader.read()).toEqual({ waiting: 1, delayed: 0, failed: 0 });
      const stats = await admin.info('commandstats');
      const calls = /cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1];
      // The read held during the stall, and at most one more once Redis answered again.
      expect(Number(calls)).toBeGreaterThanOrEqual(1);
      expect(Number(calls)).toBeLessThanOrEqual(2);
    } finally {
      admin.disconnect();
      await relay.close();
    }
  });
});
