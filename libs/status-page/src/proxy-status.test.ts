import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretRedactor } from '@modproxy/config';
import { errors } from '@modproxy/errors';
import {
  createQueueRedis,
  FETCH_QUEUE,
  FetchQueue,
  HostLimitTable,
  HostPoliteness,
  jobFailureError,
} from '@modproxy/queue';
import { getFreePort, startRedisServer, type RedisServer } from '@modproxy/testing';
import { ProxyStatus } from './proxy-status';

const SECRET = 's3cr3t-upstream-password';

describe('ProxyStatus', () => {
  it('keeps the last versions and failures this process saw, newest first, within its capacity', async () => {
    let clock = Date.parse('2026-12-01T10:00:00Z');
    const status = new ProxyStatus({ capacity: 3, now: () => new Date((clock += 1_000)) });
    for (let i = 1; i <= 5; i++) status.recordFetched('example.com/m', `v1.0.${i}`, i * 10);
    status.recordFailure(
      'example.com/m',
      'v9.0.0',
      errors.notFound('upstream.goproxy.info', 'not found upstream'),
    );
    // A client that left is not a failure of the fetch.
    status.recordFailure('example.com/m', 'v9.0.1', errors.cancelled('module.fetch', 'the client went away'));

    const snapshot = await status.snapshot();
    expect(snapshot.fetched.map((entry) => entry.version)).toEqual(['v1.0.5', 'v1.0.4', 'v1.0.3']);
    expect(snapshot.fetched[0]).toMatchObject({ by: 'this process', durationMs: 50 });
    expect(snapshot.failures).toEqual([
      expect.objectContaining({ version: 'v9.0.0', kind: 'not-found', message: 'not found upstream' }),
    ]);
    expect(snapshot.queue).toEqual({ state: 'not-configured' });
    expect(snapshot.hostsState).toEqual({ state: 'not-configured' });
  });

  it('shows the operator detail of a failure with the process’s secrets and any URL userinfo redacted', async () => {
    const redactor = new SecretRedactor([SECRET]);
    const status = new ProxyStatus({ redact: (text) => redactor.redact(text) });
    status.recordFailure(
      'example.com/m',
      'v1.0.0',
      errors.badGateway('upstream.goproxy.zip', 'upstream failed: 502', {
        detail: `GET https://ci:${SECRET}@proxy.corp.example/example.com/m/@v/v1.0.0.zip: 502 token=${SECRET}`,
      }),
    );
    const [failure] = (await status.snapshot()).failures;
    expect(failure?.detail).toBeDefined();
    expect(failure?.detail).not.toContain(SECRET);
    expect(failure?.detail).not.toContain('ci:');
    expect(failure?.detail).toContain('proxy.corp.example/example.com/m/@v/v1.0.0.zip: 502');
  });

  it('answers within its deadline when the queue Redis cannot be reached, saying so', async () => {
    const port = await getFreePort();
    const connection = createQueueRedis(`redis://127.0.0.1:${port}`);
    try {
      const status = new ProxyStatus({ queue: { connection, prefix: 'unreachable' }, readTimeoutMs: 300 });
      status.recordFetched('example.com/m', 'v1.0.0', 5);
      const snapshot = await status.snapshot();
      expect(snapshot.fetched.map((entry) => entry.version)).toEqual(['v1.0.0']);
      expect(snapshot.queue).toEqual({
        state: 'unavailable',
        reason: 'the queue Redis did not answer within 300 ms',
      });
      expect(snapshot.hostsState.state).toBe('unavailable');
      await status.close();
    } finally {
      connection.disconnect();
    }
  });
});

/** The production shape's sources against a real Redis: a worker playing crathens on one prefix. */
describe('ProxyStatus over the queue Redis', () => {
  let redis: RedisServer;
  let connection: Redis;

  beforeAll(async () => {
    redis = await startRedisServer();
    connection = createQueueRedis(redis.url);
  });
  afterAll(async () => {
    await connection?.quit();
    await redis?.stop();
  });

  it('lists the fetch queue’s completed and failed jobs and each host’s cooldown and failures', async () => {
    const prefix = `status-${randomBytes(4).toString('hex')}`;
    const producer = new FetchQueue({ connection, prefix });
    const workerConnection = createQueueRedis(redis.url);
    const worker = new Worker(
      FETCH_QUEUE,
      async (job) => {
        if (job.id === 'example.com/m@v1.0.0') return { result: 'fetched' };
        if (job.id === 'example.com/m@v1.0.1') return { result: 'already-stored' };
        throw jobFailureError(errors.notFound('upstream.goproxy.info', 'not found upstream: <v1.99.0>'));
      },
      { connection: workerConnection, prefix },
    );
    const politeness = new HostPoliteness({
      redis: connection,
      prefix,
      limits: new HostLimitTable({ concurrency: 4, ratePerSecond: 0, burst: 1 }),
      failureBackoffMs: 1_000,
      failureBackoffMaxMs: 600_000,
    });
    const status = new ProxyStatus({ queue: { connection, prefix } });
    try {
      await producer.fetchAndWait('example.com/m', 'v1.0.0');
      await producer.fetchAndWait('example.com/m', 'v1.0.1');
      await expect(producer.fetchAndWait('example.com/m', 'v1.99.0')).rejects.toMatchObject({
        kind: 'not-found',
      });
      // A host that answered 429 with Retry-After: 300, as crathens' gate records it.
      const decision = await politeness.acquire('proxy.golang.example');
      if (!decision.granted) throw new Error('the host refused its first slot');
      await politeness.release(decision.lease, {
        kind: 'failure',
        errorKind: 'unavailable',
        message: 'upstream failed: 429',
        retryAfterMs: 300_000,
      });
      const healthy = await politeness.acquire('git.example');
      if (!healthy.granted) throw new Error('the host refused its first slot');
      await politeness.release(healthy.lease, { kind: 'success' });

      const snapshot = await status.snapshot();
      expect(snapshot.queue).toEqual({ state: 'ok' });
      expect(snapshot.fetched).toEqual([
        expect.objectContaining({ version: 'v1.0.1', by: 'fetch queue', result: 'already-stored' }),
        expect.objectContaining({ version: 'v1.0.0', by: 'fetch queue', result: 'fetched' }),
      ]);
      expect(snapshot.failures).toEqual([
        expect.objectContaining({
          module: 'example.com/m',
          version: 'v1.99.0',
          kind: 'not-found',
          message: 'not found upstream: <v1.99.0>',
          by: 'fetch queue',
          attempts: 1,
        }),
      ]);
      expect(snapshot.hostsState).toEqual({ state: 'ok' });
      const hosts = new Map(snapshot.hosts.map((host) => [host.host, host]));
      const cooling = hosts.get('proxy.golang.example');
      expect(cooling?.coolingDownUntil?.getTime()).toBeGreaterThan(snapshot.generatedAt.getTime() + 200_000);
      expect(cooling?.consecutiveFailures).toBe(1);
      expect(cooling?.recentFailures[0]).toMatchObject({
        errorKind: 'unavailable',
        message: 'upstream failed: 429',
      });
      expect(hosts.get('git.example')).toMatchObject({ coolingDownUntil: undefined, consecutiveFailures: 0 });
    } finally {
      await status.close();
      await worker.close();
      await workerConnection.quit();
      await producer.close();
    }
  });
});
