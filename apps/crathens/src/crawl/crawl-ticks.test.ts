import { Readable } from 'node:stream';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { jobsV1 } from '@modproxy/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlJobId, CrawlQueue, RecentModules } from '@modproxy/queue';
import { MemoryStorage } from '@modproxy/storage';
import { startRedisServer, type RedisServer } from '@modproxy/testing';
import { queueCatalogCrawls, queueRecentCrawls } from './crawl-ticks';

let server: RedisServer;
let redis: Redis;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis?.quit();
  await server?.stop();
});

async function store(storage: MemoryStorage, module: string, version: string): Promise<void> {
  await storage.save({
    module,
    version,
    info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' })),
    mod: Buffer.from(`module ${module}\n`),
    zip: Readable.from([Buffer.from('zip')]),
  });
}

describe('crawl scheduler ticks', () => {
  it('crawl-catalog queues one delayed crawl per stored module within the jitter, and never twice', async () => {
    const storage = new MemoryStorage();
    for (const version of ['v1.0.0', 'v1.1.0', 'v2.0.0+incompatible'])
      await store(storage, 'example.com/a', version);
    await store(storage, 'example.com/b', 'v0.1.0');
    await store(storage, 'example.com/c/v2', 'v2.0.0');
    const crawls = new CrawlQueue({ connection: redis, prefix: `ticks${(prefixes += 1)}` });
    try {
      const signal = new AbortController().signal;
      expect(await queueCatalogCrawls(storage, crawls, 60_000, signal)).toBe(3);
      expect(await queueCatalogCrawls(storage, crawls, 60_000, signal)).toBe(3);
      const jobs = await crawls.queue.getJobs(['delayed', 'waiting']);
      expect(jobs.map((job) => job.id).sort()).toEqual(
        ['example.com/a', 'example.com/b', 'example.com/c/v2'].map(crawlJobId),
      );
      for (const job of jobs) {
        expect(job.opts.delay ?? 0).toBeGreaterThanOrEqual(0);
        expect(job.opts.delay ?? 0).toBeLessThan(60_000);
      }
    } finally {
      await crawls.queue.obliterate({ force: true });
      await crawls.close();
    }
  });

  it('crawl-recent crawls recently requested modules now, promoting one a catalog pass delayed', async () => {
    const prefix = `ticks${(prefixes += 1)}`;
    const crawls = new CrawlQueue({ connection: redis, prefix });
    const recent = new RecentModules({ redis, prefix, flushIntervalMs: 60_000 });
    try {
      await crawls.crawlModule('example.com/hot', jobsV1.CrawlReason.CRAWL_REASON_SCHEDULED, {
        delayMs: 3_600_000,
      });
      recent.touch('example.com/hot');
      recent.touch('example.com/new');
      await recent.flush();
      expect(await queueRecentCrawls(recent, crawls, 60_000, new AbortController().signal)).toBe(2);
      for (const module of ['example.com/hot', 'example.com/new']) {
        const job = await Job.fromId(crawls.queue, crawlJobId(module));
        expect(await job?.getState(), module).toBe('waiting');
      }
    } finally {
      await recent.close();
      await crawls.queue.obliterate({ force: true });
      await crawls.close();
    }
  });
});
