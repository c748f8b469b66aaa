import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, waitUntil, type RedisServer } from '@modproxy/testing';
import {
  CRAWL_CATALOG_SCHEDULER,
  CRAWL_RECENT_SCHEDULER,
  CrawlSchedulers,
  type CrawlSchedulersOptions,
} from './crawl-schedulers';
import { RecentModules } from './recent-modules';
import { UnconfirmedVersions } from './unconfirmed-versions';

let server: RedisServer;
const connections: Redis[] = [];
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await Promise.all(connections.map((redis) => redis.quit().catch(() => undefined)));
  await server?.stop();
});

function connection(): Redis {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  connections.push(redis);
  return redis;
}

describe('RecentModules', () => {
  it('shares what was asked for recently between processes, newest first, debounced per process', async () => {
    const prefix = `recent${(prefixes += 1)}`;
    let clock = 1_000_000;
    const now = () => clock;
    const proxyA = new RecentModules({
      redis: connection(),
      prefix,
      now,
      debounceMs: 60_000,
      flushIntervalMs: 60_000,
    });
    const proxyB = new RecentModules({
      redis: connection(),
      prefix,
      now,
      debounceMs: 60_000,
      flushIntervalMs: 60_000,
    });
    try {
      proxyA.touch('example.com/a');
      clock += 1_000;
      proxyB.touch('example.com/b');
      await Promise.all([proxyA.flush(), proxyB.flush()]);
      expect(await proxyA.since(0)).toEqual(['example.com/b', 'example.com/a']);

      // Asked again within the debounce period: not written again, so `a` keeps its time.
      clock += 1_000;
      proxyA.touch('example.com/a');
      await proxyA.flush();
      expect(await proxyB.since(0)).toEqual(['example.com/b', 'example.com/a']);
      // After it: written, and now the most recent.
      clock += 60_000;
      proxyA.touch('example.com/a');
      await proxyA.flush();
      expect(await proxyB.since(0)).toEqual(['example.com/a', 'example.com/b']);
      expect(await proxyB.since(clock - 1)).toEqual(['example.com/a']);
      expect(await proxyB.since(0, 1)).toEqual(['example.com/a']);
    } finally {
      await proxyA.close();
      await proxyB.close();
    }
  });

  it('is trimmed by age and by size', async () => {
    let clock = 10_000_000;
    const recent = new RecentModules({
      redis: connection(),
      prefix: `trim${(prefixes += 1)}`,
      now: () => clock,
      maxAgeMs: 5_000,
      maxModules: 3,
      flushIntervalMs: 60_000,
    });
    try {
      for (let i = 0; i < 5; i++) {
        recent.touch(`example.com/m${i}`);
        clock += 1;
      }
      await recent.flush();
      expect(await recent.since(0)).toEqual(['example.com/m4', 'example.com/m3', 'example.com/m2']);
      clock += 10_000;
      recent.touch('example.com/new');
      await recent.flush();
      expect(await recent.since(0)).toEqual(['example.com/new']);
    } finally {
      await recent.close();
    }
  });
});

describe('UnconfirmedVersions', () => {
  it('remembers hidden candidates per module, and forgets them when told none', async () => {
    const memory = new UnconfirmedVersions({ redis: connection(), prefix: `hidden${(prefixes += 1)}` });
    expect(await memory.hidden('example.com/m')).toEqual(new Set());
    await memory.remember('example.com/m', [
      'v2.0.0+incompatible',
      'v2.0.0+incompatible',
      'v3.0.0+incompatible',
    ]);
    expect(await memory.hidden('example.com/m')).toEqual(
      new Set(['v2.0.0+incompatible', 'v3.0.0+incompatible']),
    );
    expect(await memory.hidden('example.com/other')).toEqual(new Set());
    await memory.remember('example.com/m', []);
    expect(await memory.hidden('example.com/m')).toEqual(new Set());
  });
});

describe('CrawlSchedulers', () => {
  function schedulers(prefix: string, overrides: Partial<CrawlSchedulersOptions> = {}) {
    const ticks = { catalog: 0, recent: 0 };
    const instance = new CrawlSchedulers({
      connection: connection(),
      prefix,
      catalogIntervalMs: 300,
      recentIntervalMs: 100,
      crawlCatalog: async () => ++ticks.catalog,
      crawlRecent: async () => ++ticks.recent,
      ...overrides,
    });
    return { instance, ticks };
  }

  it('two starts, and a restart, leave one scheduler of each kind; both tick', async () => {
    const prefix = `sched${(prefixes += 1)}`;
    const first = schedulers(prefix);
    const second = schedulers(prefix);
    await first.instance.start();
    await second.instance.start();
    try {
      const kept = await first.instance.schedulers();
      expect(kept.map((scheduler) => scheduler.key).sort()).toEqual([
        CRAWL_CATALOG_SCHEDULER,
        CRAWL_RECENT_SCHEDULER,
      ]);
      expect(Object.fromEntries(kept.map((scheduler) => [scheduler.key, scheduler.every]))).toEqual({
        [CRAWL_CATALOG_SCHEDULER]: 300,
        [CRAWL_RECENT_SCHEDULER]: 100,
      });
      await waitUntil(
        () =>
          first.ticks.catalog + second.ticks.catalog >= 2 && first.ticks.recent + second.ticks.recent >= 3,
        {
          what: 'both schedulers ticked more than once',
        },
      );

      // A restart with a new interval replaces the scheduler rather than adding one.
      await first.instance.close();
      const restarted = schedulers(prefix, { catalogIntervalMs: 60_000 });
      await restarted.instance.start();
      try {
        const after = await restarted.instance.schedulers();
        expect(after).toHaveLength(2);
        expect(after.find((scheduler) => scheduler.key === CRAWL_CATALOG_SCHEDULER)?.every).toBe(60_000);
        expect(
          await restarted.instance.queue.getJobCountByTypes('delayed', 'waiting', 'active'),
        ).toBeLessThanOrEqual(2);
      } finally {
        await restarted.instance.close();
      }
    } finally {
      await second.instance.close();
    }
  });
});
