import type { Queue } from 'bullmq';
import { jobsV1 } from '@modproxy/contracts';
import { matchPrefixPatterns } from '@modproxy/gomod';
import {
  CRAWL_QUEUE,
  CrawlQueue,
  CrawlSchedulers,
  HostGate,
  HostPoliteness,
  JobWorker,
  RecentModules,
  UnconfirmedVersions,
  hostLimitTableFromConfig,
  hostMiddleware,
} from '@modproxy/queue';
import { createVersionSourceFromConfig, politenessHostOf } from '@modproxy/upstream';
import type { CrathensComponent, CrathensExtension } from '../compose';
import { CrawlMetrics } from './crawl-metrics';
import { queueCatalogCrawls, queueRecentCrawls } from './crawl-ticks';
import { ModuleCrawler, type ListRefresher } from './module-crawler';

/**
 * Per-host politeness for every fetch and crawl, the crawl worker (CrawlModule, RefreshList)
 * and the crawl-catalog and crawl-recent schedulers.
 */
export const crawlExtension: CrathensExtension = (context) => {
  const { config, connection, prefix, logger } = context;
  const metrics = new CrawlMetrics(context.metrics.registry);
  const politeness = new HostPoliteness({
    redis: connection,
    prefix,
    limits: hostLimitTableFromConfig(config),
    failureBackoffMs: config.HOST_FAILURE_BACKOFF_MS,
    failureBackoffMaxMs: config.HOST_FAILURE_BACKOFF_MAX_MS,
  });
  const hostOf = politenessHostOf(config.UPSTREAM);
  const gate = (queue: { queue: Queue }) =>
    new HostGate({
      politeness,
      queue: queue.queue,
      onDeferred: (_job, decision) => metrics.deferred(queue.queue.name, decision.reason),
      onReleaseError: (host, error) =>
        logger.warn(
          { host, err: (error as Error).message },
          'could not give a host slot back; its lease expires',
        ),
    });
  context.fetchMiddleware.push(hostMiddleware(gate(context.fetchQueue), hostOf));

  const crawls = new CrawlQueue({ connection, prefix });
  context.jobMetrics.watchQueue(crawls.queue);
  const source = createVersionSourceFromConfig(config);
  const recent = new RecentModules({ redis: connection, prefix });
  const lathens = context.lathens;
  const refresher: ListRefresher | undefined = lathens && {
    list: (module, options) => lathens.list(module, options),
    refreshList: (module, options) => lathens.refreshList(module, options),
  };
  const crawler = new ModuleCrawler({
    source,
    storage: context.storage,
    lathens: refresher,
    queueFetch: (module, version) => context.fetchQueue.add(module, version),
    prefetch: (module) =>
      config.PREFETCH_MODULES !== '' && matchPrefixPatterns(config.PREFETCH_MODULES, module),
    unconfirmed: new UnconfirmedVersions({ redis: connection, prefix }),
  });
  if (!lathens)
    logger.warn(
      'LATHENS_GRPC_URL is not set: crawls can prefetch new versions but cannot make replicas list them',
    );

  const worker = new JobWorker({
    ...context.workerDefaults,
    queueName: CRAWL_QUEUE,
    concurrency: config.CRAWL_CONCURRENCY,
    middleware: [hostMiddleware(gate(crawls), hostOf)],
    events: context.jobMetrics.workerEvents(CRAWL_QUEUE),
    handlers: {
      CrawlModule: async ({ module, reason }, { signal }) => {
        const result = await crawler.crawl(module, { signal });
        metrics.crawled(result);
        const crawlReason = jobsV1.crawlReasonToJSON(reason);
        if (result.result !== 'crawled') logger.debug({ module, crawlReason, ...result }, 'not crawled');
        else if (result.found.length > 0 || result.unlisted.length > 0)
          logger.info({ module, crawlReason, ...result }, 'crawl found new versions');
        return result;
      },
      RefreshList: async ({ module }, { signal }) => {
        if (!lathens) return { versions: 0 };
        const answer = await lathens.refreshList(module, { signal });
        return { versions: answer.versions.length, stale: answer.stale };
      },
    },
  });

  const schedulers = new CrawlSchedulers({
    connection,
    prefix,
    catalogIntervalMs: config.CRAWL_INTERVAL_MS,
    recentIntervalMs: config.RECENT_CRAWL_INTERVAL_MS,
    lockDurationMs: config.JOB_LOCK_DURATION_MS,
    crawlCatalog: (signal) => queueCatalogCrawls(context.storage, crawls, config.CRAWL_JITTER_MS, signal),
    crawlRecent: (signal) => queueRecentCrawls(recent, crawls, config.RECENT_CRAWL_WINDOW_MS, signal),
    onTick: (scheduler, queued, durationMs) =>
      logger.info({ scheduler, queued, durationMs }, 'crawls queued'),
    onTickFailed: (scheduler, error) =>
      logger.warn(
        { scheduler, err: (error as Error).message },
        'a crawl scheduler tick failed; the next one comes at its interval',
      ),
  });

  const components: CrathensComponent[] = [
    {
      name: 'crawl-worker',
      start: () => worker.start(),
      close: async (graceMs) => {
        const { handedBack } = await worker.close(graceMs);
        if (handedBack > 0)
          logger.warn({ handedBack, graceMs }, 'crawl jobs still running at shutdown were handed back');
        await crawls.close();
        await recent.close();
        await source.close();
      },
    },
    {
      name: 'crawl-schedulers',
      start: () => schedulers.start(),
      close: () => schedulers.close(),
    },
  ];
  return components;
};
