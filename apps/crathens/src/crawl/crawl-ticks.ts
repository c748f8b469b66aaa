import { Job } from 'bullmq';
import { jobsV1 } from '@modproxy/contracts';
import { crawlJobId, type CrawlQueue, type RecentModules } from '@modproxy/queue';
import type { ModuleStorage } from '@modproxy/storage';

/** Adds in flight at once while a tick queues crawls (a catalog holds many modules). */
const ADDS_AT_ONCE = 32;
const CATALOG_PAGE = 1_000;

/**
 * A crawl-catalog tick: one CrawlModule job per module in the storage catalog, each delayed by
 * a random time below `jitterMs` so a pass reaches upstream spread out. A module whose crawl
 * still waits (the last pass's, or a recent one) keeps that job: the id is per module.
 */
export async function queueCatalogCrawls(
  storage: Pick<ModuleStorage, 'catalog'>,
  crawls: CrawlQueue,
  jitterMs: number,
  signal: AbortSignal,
  random: () => number = Math.random,
): Promise<number> {
  let queued = 0;
  let last: string | undefined;
  let pageToken: string | undefined;
  do {
    signal.throwIfAborted();
    const page = await storage.catalog({
      pageSize: CATALOG_PAGE,
      signal,
      ...(pageToken ? { pageToken } : {}),
    });
    const modules: string[] = [];
    // The catalog is ordered by module, so a module's versions are next to each other (across pages too).
    for (const { module } of page.entries) {
      if (module === last) continue;
      last = module;
      modules.push(module);
    }
    await inBatches(modules, (module) =>
      crawls.crawlModule(module, jobsV1.CrawlReason.CRAWL_REASON_SCHEDULED, {
        delayMs: Math.floor(random() * jitterMs),
      }),
    );
    queued += modules.length;
    pageToken = page.nextPageToken;
  } while (pageToken);
  return queued;
}

/**
 * A crawl-recent tick: a CrawlModule job now for every module clients asked for within the
 * window. One still delayed by a catalog pass's jitter is promoted, so recent modules never
 * wait for it.
 */
export async function queueRecentCrawls(
  recent: RecentModules,
  crawls: CrawlQueue,
  windowMs: number,
  signal: AbortSignal,
): Promise<number> {
  const modules = await recent.since(Date.now() - windowMs);
  await inBatches(modules, async (module) => {
    signal.throwIfAborted();
    await crawls.crawlModule(module, jobsV1.CrawlReason.CRAWL_REASON_RECENT);
    const job = await Job.fromId(crawls.queue, crawlJobId(module));
    if (job && (await job.isDelayed())) await job.promote().catch(() => undefined);
  });
  return modules.length;
}

async function inBatches<T>(items: readonly T[], run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += ADDS_AT_ONCE) {
    await Promise.all(items.slice(i, i + ADDS_AT_ONCE).map(run));
  }
}
