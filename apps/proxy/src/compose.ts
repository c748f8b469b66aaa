import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import {
  DownloadPolicy,
  ModuleFeeds,
  ModuleService,
  type InProcessFetcherEvents,
  type ModuleServiceEvents,
  type VersionFetcher,
} from '@modproxy/module-service';
import type { Logger } from '@modproxy/observability';
import { configSecrets, SecretRedactor } from '@modproxy/config';
import { ProxyStatus } from '@modproxy/status-page';
import {
  closeQueueConnection,
  createQueueRedis,
  FetchQueue,
  RecentModules,
  refusesCredentials,
} from '@modproxy/queue';
import { DiskStorage, MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { errors, toModuleError, type ModuleError } from '@modproxy/errors';
import { grpcClientTls } from '@modproxy/grpc';
import {
  CachedVersions,
  FailoverVersions,
  MemoryVersionStore,
  UpstreamVersions,
  type VersionsProvider,
} from '@modproxy/versions';
import { GrpcVersions } from '@modproxy/versions-grpc';
import { createUpstreamFromConfig, moduleFilterFromConfig, type Upstream } from '@modproxy/upstream';
import type { ProxyConfig } from './config';
import { cacheStorage, type ContentCacheOptions } from './content-cache';
import { ContentCacheMetrics } from './content-cache-metrics';
import { downloadPolicyOf } from './download-mode-file';
import { createProxyApp } from './http/proxy-app';
import { ProxyMetrics } from './proxy-metrics';

export interface ComposeOverrides {
  /** Extra environment for the go command (tests point git at fixture repositories). */
  goEnv?: Record<string, string>;
  storage?: ModuleStorage;
  /**
   * How misses are fetched when no fetch queue is configured (a worker hands them to the
   * primary process). Default: in this process.
   */
  fetcher?: VersionFetcher;
  /**
   * list/latest without lathens (a worker's: the primary's embedded cache). Default: the
   * embedded cache in this process.
   */
  versions?: VersionsProvider;
  /** What `/metrics` answers (a worker's: every process's metrics, aggregated). Default: this process's. */
  scrapeMetrics?: () => Promise<string>;
  /** The content cache's tiers and purges (a cluster worker's). Default: as the configuration says. */
  contentCache?: ContentCacheOptions;
}

export interface ProxyComposition {
  app: ReturnType<typeof createProxyApp>;
  service: ModuleService;
  storage: ModuleStorage;
  upstream: Upstream;
  /** list/latest; told of versions stored by another process (the primary's fetches). */
  versions: VersionsProvider;
  metrics: ProxyMetrics;
  /** What the admin port's status page shows. */
  status: ProxyStatus;
  /**
   * Deletes a version from storage and from every replica's content cache (the admin port's
   * purge): `not-found` when storage did not have it, `unavailable` when not every replica
   * could be told.
   */
  purge(module: string, version: string): Promise<void>;
  beginShutdown(): void;
  close(): Promise<void>;
}

/** The composition root: configuration in, a wired proxy out. Same code paths for every adapter. */
export async function composeProxy(
  config: ProxyConfig,
  logger: Logger,
  overrides: ComposeOverrides = {},
): Promise<ProxyComposition> {
  const proxyMetrics = new ProxyMetrics();
  // Every read goes through this replica's cache of immutable content (libs/content-cache).
  const storage = await cacheStorage(
    config,
    overrides.storage ?? (await createStorage(config)),
    logger,
    new ContentCacheMetrics(proxyMetrics.http.registry, logger),
    overrides.contentCache,
  );
  const metrics = proxyMetrics.http;
  const upstream = createUpstreamFromConfig(config, {
    fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
    ...(overrides.goEnv ? { goEnv: overrides.goEnv } : {}),
    onCall: proxyMetrics.upstreamCall,
  });
  const policy = downloadPolicyOfConfig(config);
  const queue = config.QUEUE_REDIS_URL ? createQueuedFetches(config, logger, proxyMetrics) : undefined;
  // The status page: this process's fetches and failures; with the queue, its jobs and the hosts.
  const redactor = new SecretRedactor(configSecrets(config));
  const status = new ProxyStatus({
    ...(queue ? { queue: { connection: queue.connection, prefix: config.QUEUE_PREFIX } } : {}),
    redact: (text) => redactor.redact(text),
  });
  // A cluster worker asks the primary's embedded cache; lathens is shared by everyone anyway.
  const { versions, degraded } =
    overrides.versions && !config.LATHENS_GRPC_URL
      ? { versions: overrides.versions, degraded: async () => false }
      : createProxyVersions(config, storage, upstream, logger, proxyMetrics);
  const moduleFilter = moduleFilterFromConfig(config);
  const service = new ModuleService({
    storage,
    upstream,
    versions,
    downloadPolicy: policy,
    ...(queue ? { fetcher: queue.fetcher } : overrides.fetcher ? { fetcher: overrides.fetcher } : {}),
    fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
    queryCacheTtlMs: config.QUERY_CACHE_TTL_MS,
    moduleFilter,
    events: { ...queue?.events, ...fetchEvents(logger, proxyMetrics, status) },
  });
  proxyMetrics.watchFetchesInFlight(() => service.fetchesInFlight);
  let shuttingDown = false;
  const app = createProxyApp({
    service,
    feeds: new ModuleFeeds({ storage, moduleFilter }),
    onServed: (endpoint, source) => proxyMetrics.served(endpoint, source),
    logger,
    metrics,
    ...(overrides.scrapeMetrics ? { scrapeMetrics: overrides.scrapeMetrics } : {}),
    isShuttingDown: () => shuttingDown,
    readiness: async () => {
      await storage.exists('modproxy.invalid/readiness', 'v0.0.0', { signal: AbortSignal.timeout(2_000) });
      if (await degraded())
        return 'degraded: lathens unavailable, answering list/latest from storage and upstream';
      // Stored versions are still served; a miss waits a moment for the queue, then gets 503.
      if (queue && queue.connection.status !== 'ready')
        return queue.refused()
          ? 'degraded: queue Redis refuses the password of QUEUE_REDIS_URL, misses answered 503'
          : 'degraded: queue Redis unavailable, misses answered 503';
      return 'ok';
    },
  });
  return {
    app,
    service,
    storage,
    upstream,
    versions,
    metrics: proxyMetrics,
    status,
    purge: (module, version) => storage.delete(module, version),
    beginShutdown: () => {
      shuttingDown = true;
    },
    close: async () => {
      await status.close().catch(() => undefined);
      await queue?.close();
      await versions.close();
      await upstream.close?.();
      await storage.close();
    },
  };
}

function downloadPolicyOfConfig(config: ProxyConfig): DownloadPolicy {
  return config.DOWNLOAD_MODE_FILE
    ? downloadPolicyOf(config.DOWNLOAD_MODE_FILE.file)
    : DownloadPolicy.uniform(config.DOWNLOAD_MODE, config.DOWNLOAD_REDIRECT_URL);
}

/**
 * list/latest as the configuration says (lathens, or the embedded cache), with stale answers
 * and lathens failovers counted and logged; upstream is asked only when some module may be
 * fetched.
 */
export function createProxyVersions(
  config: ProxyConfig,
  storage: ModuleStorage,
  upstream: Upstream,
  logger: Logger,
  proxyMetrics: ProxyMetrics,
): { versions: VersionsProvider; degraded: () => Promise<boolean> } {
  const policy = downloadPolicyOfConfig(config);
  return createVersions(config, storage, policy.fetchesAny ? upstream : undefined, {
    onStale: (module, operation, error) => {
      proxyMetrics.staleAnswer(operation);
      logger.warn(
        { module, operation, kind: error.kind, op: error.op, detail: error.detail, err: error.message },
        'upstream failed; served a stale answer',
      );
    },
    onFailover: (operation, error) => {
      proxyMetrics.lathensFailover(operation);
      logger.warn(
        { operation, kind: error.kind, err: error.message },
        'lathens unavailable; answered from storage and upstream',
      );
    },
  });
}

/** What a fetch in this process reports: metrics, the status page and the log. */
export function fetchEvents(
  logger: Logger,
  proxyMetrics: ProxyMetrics,
  status: ProxyStatus,
): Required<InProcessFetcherEvents> {
  return {
    fetched: (module, version, durationMs) => {
      proxyMetrics.fetched(durationMs);
      status.recordFetched(module, version, durationMs);
      logger.info({ module, version, durationMs }, 'fetched and stored');
    },
    fetchFailed: (module, version, error) => {
      proxyMetrics.fetchFailed(error);
      status.recordFailure(module, version, error);
      // op and detail say which upstream failed and how (a timeout of the go command or of a
      // proxy included); the detail is redacted where it is made.
      logger.warn(
        { module, version, kind: error.kind, op: error.op, detail: error.detail, err: error.message },
        'fetch failed',
      );
    },
    goModMismatch: (module, version, found) => {
      proxyMetrics.goModMismatch(found);
      logger.warn(
        { module, version, found },
        found === 'zip'
          ? 'go.mod mismatch: the zip has another go.mod than the one served before it; nothing was stored'
          : 'go.mod mismatch: the version was stored with another go.mod than the one this replica served',
      );
    },
    observeFailed: (module, version, error) => {
      logger.warn(
        { module, version, kind: error.kind, err: error.message },
        'could not announce a stored version',
      );
    },
  };
}

interface QueuedFetches {
  connection: Redis;
  /** Whether the queue Redis refused this connection's credentials since it was last ready. */
  refused(): boolean;
  fetcher: VersionFetcher;
  events: Pick<ModuleServiceEvents, 'requested'>;
  close(): Promise<void>;
}

/**
 * The production shape's miss path: FetchVersion jobs on the queue Redis, run by crathens,
 * one job per version however many replicas and clients ask; and the record of recently
 * requested modules, which crathens' crawl-recent scheduler visits more often.
 */
function createQueuedFetches(config: ProxyConfig, logger: Logger, metrics: ProxyMetrics): QueuedFetches {
  const connection = createQueueRedis(config.QUEUE_REDIS_URL ?? '', { connectionName: 'modproxy-proxy' });
  // A wrong password is no outage that passes by itself: said once, and once mended.
  let refused = false;
  connection.on('error', (error) => {
    if (refused || !refusesCredentials(error)) return;
    refused = true;
    logger.warn(
      { err: error instanceof Error ? error.message : String(error) },
      'the queue Redis refuses the password of QUEUE_REDIS_URL; misses are answered 503 until it accepts it',
    );
  });
  connection.on('ready', () => {
    if (!refused) return;
    refused = false;
    logger.info('the queue Redis accepts the password of QUEUE_REDIS_URL again');
  });
  const queue = new FetchQueue({
    connection,
    prefix: config.QUEUE_PREFIX,
    waitTimeoutMs: config.FETCH_TIMEOUT_MS,
  });
  metrics.watchFetchQueue(queue.queue, () => queue.waiters);
  const recent = new RecentModules({
    redis: connection,
    prefix: config.QUEUE_PREFIX,
    onError: (error) => logger.warn({ err: error }, 'could not record recently requested modules'),
  });
  const fetcher: VersionFetcher = {
    fetch: async (module, version, options) => {
      const started = performance.now();
      try {
        await queueReachable(connection, module, version);
        await queue.fetch(module, version, options);
        metrics.queuedFetch('wait', 'completed', performance.now() - started);
      } catch (error) {
        const failure = toModuleError(error, 'queue.fetch', { module, version });
        metrics.queuedFetch('wait', failure.kind, performance.now() - started);
        // A client that left is no failure; crathens logs the fetch's own failures.
        if (failure.kind !== 'cancelled') {
          logger.warn(
            {
              module,
              version,
              kind: failure.kind,
              op: failure.op,
              detail: failure.detail,
              err: failure.message,
            },
            'queued fetch failed',
          );
        }
        throw failure;
      }
    },
    enqueue: async (module, version, expectations) => {
      try {
        await queueReachable(connection, module, version);
        await queue.enqueue(module, version, expectations);
        metrics.queuedFetch('enqueue', 'queued', 0);
      } catch (error) {
        metrics.queuedFetch('enqueue', toModuleError(error, 'queue.fetch', { module, version }).kind, 0);
        throw error;
      }
    },
  };
  return {
    connection,
    refused: () => refused,
    fetcher,
    events: { requested: (module) => recent.touch(module) },
    close: async () => {
      // Closing politely waits for Redis; a Redis that is away must not hold up shutdown (the
      // last batch of touches is then dropped).
      await closeQueueConnection(connection, {
        graceMs: QUEUE_CLOSE_WAIT_MS,
        closeClients: async () => {
          await recent.close();
          await queue.close();
        },
      });
    },
  };
}

/** How long shutdown waits for the queue's connections to close cleanly. */
const QUEUE_CLOSE_WAIT_MS = 5_000;

/** How long a miss waits for a queue Redis that is (re)connecting before it is refused. */
const QUEUE_CONNECT_WAIT_MS = 2_000;

/**
 * A miss while the queue Redis is away is refused at once (503, Retry-After) rather than held:
 * its commands would wait for the reconnection, past any deadline. A connection being made
 * (start-up, a reconnect) gets a moment first.
 */
async function queueReachable(connection: Redis, module: string, version: string): Promise<void> {
  if (connection.status === 'ready') return;
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      connection.off('ready', onReady);
      resolve(false);
    }, QUEUE_CONNECT_WAIT_MS);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    connection.once('ready', onReady);
  });
  if (!ready) {
    throw errors.unavailable(
      'queue.fetch',
      `${module}@${version}: the fetch queue is unavailable; try again shortly`,
      {
        module,
        version,
        retryAfterSeconds: 10,
        detail: `queue Redis connection ${connection.status}`,
      },
    );
  }
}

interface VersionsEvents {
  onStale(module: string, operation: 'list' | 'latest', error: ModuleError): void;
  onFailover(operation: 'list' | 'latest', error: ModuleError): void;
}

/**
 * list/latest: lathens when configured (with storage plus a direct upstream call when it is
 * down), otherwise the embedded in-process cache with the same freshness policy.
 */
function createVersions(
  config: ProxyConfig,
  storage: ModuleStorage,
  upstream: Upstream | undefined,
  events: VersionsEvents,
): { versions: VersionsProvider; degraded: () => Promise<boolean> } {
  const networkMode = upstream ? config.NETWORK_MODE : 'offline';
  if (config.LATHENS_GRPC_URL) {
    const lathens = new GrpcVersions({
      url: config.LATHENS_GRPC_URL,
      deadlineMs: config.LATHENS_DEADLINE_MS,
      ...(config.LATHENS_GRPC_TOKEN ? { token: config.LATHENS_GRPC_TOKEN } : {}),
      tls: grpcClientTls(config.LATHENS_TLS, config.LATHENS_TLS_CA_FILE),
    });
    const versions = new FailoverVersions({
      primary: lathens,
      fallback: new UpstreamVersions({
        storage,
        ...(upstream ? { upstream } : {}),
        timeoutMs: config.UPSTREAM_TIMEOUT_MS,
        fallbackToStorage: networkMode !== 'strict',
        onFallback: events.onStale,
      }),
      onFailover: events.onFailover,
    });
    return { versions, degraded: async () => versions.degraded || !(await lathens.serving()) };
  }
  const store = new MemoryVersionStore();
  const cached = new CachedVersions({
    store,
    storage,
    ...(upstream ? { upstream } : {}),
    networkMode,
    softTtlMs: config.VERSIONS_SOFT_TTL_MS,
    hardTtlMs: config.VERSIONS_HARD_TTL_MS,
    negativeTtlMs: config.VERSIONS_NEGATIVE_TTL_MS,
    revalidateWindowMs: config.VERSIONS_REVALIDATE_WINDOW_MS,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    events: { servedStale: (kind, module, error) => events.onStale(module, kind, error) },
  });
  const versions: VersionsProvider = {
    list: (module, options) => cached.list(module, options),
    latest: (module, options) => cached.latest(module, options),
    observe: (module, version) => cached.observe(module, version),
    close: async () => {
      await cached.close();
      await store.close();
    },
  };
  return { versions, degraded: async () => false };
}

export async function createStorage(config: ProxyConfig): Promise<ModuleStorage> {
  switch (config.STORAGE_TYPE) {
    case 'memory':
      return new MemoryStorage();
    case 'disk':
      return DiskStorage.open({ root: resolve(config.STORAGE_DIR) });
    case 'grpc':
      return new GrpcStorage({
        url: config.STORAGE_GRPC_URL ?? '',
        ...(config.STORAGE_TOKEN ? { token: config.STORAGE_TOKEN } : {}),
        tls: grpcClientTls(config.STORAGE_TLS, config.STORAGE_TLS_CA_FILE),
        // Zips shared by concurrent readers are spooled where fetches write, not to /tmp (memory in containers).
        ...(config.GO_WORK_DIR ? { zipSpoolDir: config.GO_WORK_DIR } : {}),
      });
  }
}
