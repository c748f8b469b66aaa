import cluster from 'node:cluster';
import type { Logger } from '@modproxy/observability';
import type { RunningService } from '@modproxy/runtime';
import type { ProxyConfig } from '../config';
import { type RunningProxy, startProxy } from '../server';
import { ClusterWorkerInvalidationBus } from '@modproxy/content-cache';
import { PrimaryChannel } from './primary-channel';
import { WorkerFetcher } from './worker-fetcher';
import { WorkerVersions } from './worker-versions';

/**
 * One worker of `WORKERS` > 1: the whole request path (its own storage client and HTTP server
 * on the port the primary shares out), with misses fetched by the primary, list/latest from the
 * primary's embedded cache (or lathens), and `/metrics` answered with every process's metrics. SIGTERM (from the
 * primary, or anyone) drains it as it does a single process.
 */
export async function startProxyWorker(config: ProxyConfig, baseLogger: Logger): Promise<RunningService> {
  const logger = baseLogger.child({ worker: cluster.worker?.id });
  const started: { proxy?: RunningProxy } = {};
  const primary = new PrimaryChannel({
    // The primary told its list/latest provider (lathens included) already; the copies go.
    observe: (module) => void versions.observe(module),
    metrics: async () => started.proxy?.composition.metrics.http.registry.getMetricsAsJSON() ?? [],
  });
  const versions = new WorkerVersions(primary);
  const proxy = await startProxy(config, logger, {
    fetcher: new WorkerFetcher(primary),
    versions,
    scrapeMetrics: () => primary.scrape(),
    housekeeping: false,
    // Purges come from the primary (or the queue Redis); a disk tier would need a directory per worker.
    contentCache: { clusterBus: new ClusterWorkerInvalidationBus(), disk: false },
  });
  started.proxy = proxy;
  return { banner: '', shutdown: proxy.shutdown };
}
