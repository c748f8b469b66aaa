import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '@modproxy/observability';
import { createQueueRedis, FETCH_QUEUE, JobWorker } from '@modproxy/queue';
import { startRedisServer, type RedisServer } from '@modproxy/testing';
import { JobMetrics } from './job-metrics';

describe('JobMetrics labels (a real JobWorker on a real Redis)', () => {
  let redis: RedisServer;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const connect = (): Redis => {
    const connection = createQueueRedis(redis.url);
    closers.push(async () => connection.disconnect());
    return connection;
  };

  it('counts jobs of names outside jobs.v1 as name="unknown", however many names clients make up', async () => {
    const prefix = `metrics-${randomUUID().slice(0, 8)}`;
    const registry = new Registry();
    const metrics = new JobMetrics(registry);
    const worker = new JobWorker({
      queueName: FETCH_QUEUE,
      connection: connect(),
      prefix,
      handlers: { FetchVersion: async () => ({ result: 'fetched' }) },
      events: metrics.workerEvents(FETCH_QUEUE),
    });
    closers.unshift(() => worker.close(1_000));
    await worker.start();
    const producer = new Queue(FETCH_QUEUE, { connection: connect(), prefix });
    closers.unshift(() => producer.close());

    const junk = Array.from({ length: 20 }, (_, index) => `junk-${index}-${randomUUID()}`);
    for (const name of junk) await producer.add(name, {});
    // A name of jobs.v1 with data that is not its message stays a name of its own.
    await producer.add('FetchVersion', { module: 'not a module path', version: 'v1.0.0' });
    await expect
      .poll(async () => (await producer.getJobCounts('failed'))['failed'], { timeout: 30_000 })
      .toBe(21);

    const text = await registry.metrics();
    expect(text).toContain('crathens_job_attempts_total{queue="fetch",name="unknown",outcome="invalid"} 20');
    expect(text).toContain(
      'crathens_job_attempts_total{queue="fetch",name="FetchVersion",outcome="invalid"} 1',
    );
    expect(text).toContain(
      'crathens_job_duration_seconds_count{queue="fetch",name="unknown",outcome="invalid"} 20',
    );
    expect(text).not.toContain('junk-');
  });
});
