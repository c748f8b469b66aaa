import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@modproxy/storage';
import { ManualClock, startRedisServer, waitUntil, type RedisServer } from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { BullmqRevalidationQueue } from './bullmq-revalidation-queue';
import { BullmqRevalidationWorker } from './bullmq-revalidation-worker';
import { CachedVersions, type CachedVersionsOptions } from './cached-versions';
import { createCacheRedis, createQueueRedis, waitForRedis } from './redis-connection';
import { RedisVersionStore } from './redis-version-store';
import { eventually, GoproxyFixture, storeVersion } from './test-support/goproxy-fixture';
import type { ListAnswer } from './versions-provider';

/** One lathens replica: its own connections, store, queue producer and worker. */
interface Replica {
  engine: CachedVersions;
  worker: BullmqRevalidationWorker;
  store: RedisVersionStore;
  queue: BullmqRevalidationQueue;
}

describe('CachedVersions replicas sharing one Redis', () => {
  let redisServer: RedisServer;
  let upstream: GoproxyFixture;
  const storage = new MemoryStorage();
  const cleanups: Array<() => Promise<void>> = [];
  // The replicas' clock: soft and hard TTLs are ages the engine computes, so the tests move
  // it. Negative, failure and lease TTLs are Redis' own (PX): for those the tests wait for
  // Redis to end the entry, as a condition.
  let clock: ManualClock;

  beforeEach(() => {
    clock = new ManualClock();
  });
  beforeAll(async () => {
    redisServer = await startRedisServer();
    upstream = await GoproxyFixture.start();
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
    await upstream.proxy.setMode('ok');
  });
  afterAll(async () => {
    await upstream?.stop();
    await redisServer?.stop();
  });

  async function replicas(count: number, options: Partial<CachedVersionsOptions> = {}): Promise<Replica[]> {
    // A prefix per test: tests share the server, never state.
    const keyPrefix = `t${randomUUID().slice(0, 8)}`;
    const started: Replica[] = [];
    for (let i = 0; i < count; i++) {
      const cacheRedis = createCacheRedis(redisServer.url, { connectionName: `cache-${i}` });
      const queueRedis = createQueueRedis(redisServer.url, { connectionName: `queue-${i}` });
      await waitForRedis(cacheRedis);
      const queue = new BullmqRevalidationQueue({ connection: queueRedis, prefix: keyPrefix });
      const store = new RedisVersionStore({ redis: cacheRedis, keyPrefix: `${keyPrefix}:` });
      const engine = new CachedVersions({
        store,
        storage,
        now: clock.now,
        upstream: new GoproxyUpstream({ url: upstream.url, timeoutMs: 3_000 }),
        queue,
        softTtlMs: 60_000,
        hardTtlMs: 120_000,
        ...options,
      });
      const worker = new BullmqRevalidationWorker({
        connection: queueRedis,
        prefix: keyPrefix,
        revalidate: (module) => engine.revalidate(module),
      });
      await worker.waitUntilReady();
      cleanups.push(async () => {
        await worker.close();
        await engine.close();
        await queue.close();
        await Promise.all([
          cacheRedis.quit().catch(() => undefined),
          queueRedis.quit().catch(() => undefined),
        ]);
      });
      started.push({ engine, worker, store, queue });
    }
    return started;
  }

  /** `total` list requests spread round-robin over the replicas, all at once. */
  function flood(group: Replica[], module: string, total: number) {
    return Promise.all(Array.from({ length: total }, (_, i) => group[i % group.length]!.engine.list(module)));
  }

  it('answers 1,000 concurrent requests on 3 replicas with one upstream call, and revalidates once after the soft TTL', async () => {
    const module = 'example.test/coalesced/lib';
    await upstream.publish(module, ['v1.0.0', 'v1.1.0']);
    await upstream.proxy.setMode('slow', { slowDelayMs: 200 });
    const group = await replicas(3, { softTtlMs: 1_000, hardTtlMs: 60_000 });

    const first = await flood(group, module, 1_000);
    expect(upstream.listCalls(module)).toBe(1);
    for (const answer of first) expect(answer.versions).toEqual(['v1.0.0', 'v1.1.0']);
    expect(first.filter((answer) => answer.source === 'upstream').length).toBeGreaterThan(0);

    await upstream.publish(module, ['v1.0.0', 'v1.1.0', 'v1.2.0']);
    // Upstream answers nothing until released: what is answered meanwhile did not wait for it.
    await upstream.proxy.setMode('hold');
    clock.advance(1_100);
    let stale: ListAnswer[] | undefined;
    const requests = flood(group, module, 1_000).then((answers) => (stale = answers));
    await waitUntil(() => stale !== undefined, { what: 'the stale answers are served' });
    // Served from the cache while the revalidation waits for upstream: the old list, everywhere.
    for (const answer of await requests)
      expect(answer).toEqual({ versions: ['v1.0.0', 'v1.1.0'], source: 'cache', stale: false });
    await waitUntil(() => upstream.proxy.heldRequests === 1, { what: 'the revalidation asks upstream' });
    await upstream.proxy.setMode('ok');

    const refreshed = await eventually(async () => {
      const answers = await Promise.all(group.map(({ engine }) => engine.list(module)));
      return answers.every((answer) => answer.versions.length === 3);
    });
    expect(refreshed).toBe(true);
    // Every revalidation job has run (the refreshed answer stays fresh on the still clock), and
    // none of them asked upstream a second time.
    await waitUntil(
      async () => {
        const counts = await group[0]!.queue.queue.getJobCounts(
          'waiting',
          'active',
          'delayed',
          'prioritized',
        );
        return Object.values(counts).every((count) => count === 0);
      },
      { what: 'the revalidation queue is idle' },
    );
    expect(upstream.listCalls(module)).toBe(2);
    expect(group.reduce((sum, { worker }) => sum + worker.processedJobs, 0)).toBeGreaterThanOrEqual(1);
  });

  it('shows an observed version on every replica at once, once storage holds it', async () => {
    const module = 'example.test/observed/lib';
    await upstream.publish(module, ['v1.0.0']);
    const group = await replicas(3);
    await flood(group, module, 30);
    expect(upstream.listCalls(module)).toBe(1);

    await expect(group[0]!.engine.observe(module, 'v1.99.0')).rejects.toMatchObject({ kind: 'not-found' });
    for (const { engine } of group) expect((await engine.list(module)).versions).toEqual(['v1.0.0']);

    await storeVersion(storage, module, 'v1.1.0');
    await group[0]!.engine.observe(module, 'v1.1.0');
    for (const { engine } of group) {
      expect(await engine.list(module)).toEqual({
        versions: ['v1.0.0', 'v1.1.0'],
        source: 'cache',
        stale: false,
      });
    }
    expect(upstream.listCalls(module)).toBe(1);
  });

  it('stops a flood of requests for a module that does not exist at one upstream call per negative TTL', async () => {
    const module = 'example.test/missing/lib';
    // Long enough that a flood on a busy machine ends well inside it.
    const group = await replicas(3, { negativeTtlMs: 2_000 });
    for (let round = 1; round <= 2; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 600 }, (_, i) => group[i % 3]!.engine.list(module)),
      );
      expect(
        results.every((result) => result.status === 'rejected' && result.reason.kind === 'not-found'),
      ).toBe(true);
      expect(upstream.listCalls(module)).toBe(round);
      await waitUntil(async () => (await group[0]!.store.read('list', module)).notFound === undefined, {
        what: 'Redis ends the negative entry',
      });
    }
  });

  it('keeps serving the last answer on every replica while upstream is down, and refreshes when it is back', async () => {
    const module = 'example.test/outage/lib';
    await upstream.publish(module, ['v1.0.0']);
    const group = await replicas(3, { softTtlMs: 100, hardTtlMs: 200, failureTtlMs: 300 });
    await flood(group, module, 30);
    await upstream.proxy.setMode('down');
    clock.advance(250);

    // Each round: one refresh fails and records the failure, the others serve the fallback
    // from that record; then Redis ends the record and the next round tries again.
    for (let i = 0; i < 3; i++) {
      const answers = await flood(group, module, 90);
      for (const answer of answers)
        expect(answer).toEqual({ versions: ['v1.0.0'], source: 'cache', stale: true });
      await waitUntil(async () => (await group[0]!.store.read('list', module)).failure === undefined, {
        what: 'Redis ends the failure record',
      });
    }

    await upstream.publish(module, ['v1.0.0', 'v1.0.1']);
    await upstream.proxy.setMode('ok');
    const back = await eventually(async () => {
      const answers = await flood(group, module, 3);
      return answers.every((answer) => !answer.stale && answer.versions.includes('v1.0.1'));
    });
    expect(back).toBe(true);
  });

  it('recovers by itself when Redis restarts (losing everything)', async () => {
    const module = 'example.test/restart/lib';
    await upstream.publish(module, ['v1.0.0']);
    const group = await replicas(2, { softTtlMs: 300, hardTtlMs: 60_000 });
    const [a, b] = group as [Replica, Replica];
    await a.engine.list(module);
    expect((await b.engine.list(module)).source).toBe('cache');

    await redisServer.restart();
    await upstream.publish(module, ['v1.0.0', 'v1.5.0']);
    // Right after the restart: answered, from the cache again as soon as the connection is back.
    expect((await a.engine.list(module)).versions).toEqual(['v1.0.0', 'v1.5.0']);
    const cachedAgain = await eventually(
      async () => (await b.engine.list(module)).source === 'cache',
      10_000,
    );
    expect(cachedAgain).toBe(true);

    // And the revalidation queue works again too.
    await upstream.publish(module, ['v1.0.0', 'v1.5.0', 'v1.6.0']);
    clock.advance(350);
    expect((await a.engine.list(module)).versions).toEqual(['v1.0.0', 'v1.5.0']);
    const revalidated = await eventually(
      async () => (await b.engine.list(module)).versions.includes('v1.6.0'),
      10_000,
    );
    expect(revalidated).toBe(true);
  });

  it('answers without the cache when Redis is unreachable', async () => {
    const module = 'example.test/noredis/lib';
    await upstream.publish(module, ['v2.0.0']);
    const redis: Redis = createCacheRedis('redis://127.0.0.1:1');
    cleanups.push(async () => redis.disconnect());
    const failures: string[] = [];
    const engine = new CachedVersions({
      store: new RedisVersionStore({ redis }),
      storage,
      upstream: new GoproxyUpstream({ url: upstream.url, timeoutMs: 3_000 }),
      events: { storeFailed: (operation) => failures.push(operation) },
    });
    cleanups.push(() => engine.close());
    expect(await engine.list(module)).toEqual({ versions: ['v2.0.0'], source: 'upstream', stale: false });
    expect(failures).toContain('read');
  });
});
