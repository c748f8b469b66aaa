import type { Redis } from 'ioredis';
import { errors } from '@modproxy/errors';
import { grpcClientTls } from '@modproxy/grpc';
import {
  createHttpMetrics,
  createUpstreamMetrics,
  type HttpMetrics,
  type Logger,
} from '@modproxy/observability';
import { AdminAuth } from '@modproxy/http';
import {
  closeQueueConnection,
  createQueueRedis,
  FetchQueue,
  type JobMiddleware,
  type JobWorkerOptions,
} from '@modproxy/queue';
import type { ModuleStorage } from '@modproxy/storage';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { createUpstreamFromConfig, type Upstream } from '@modproxy/upstream';
import type { VersionsProvider } from '@modproxy/versions';
import { GrpcVersions } from '@modproxy/versions-grpc';
import type { CrathensConfig } from './config';
import { crathensExtensions } from './extensions';
import { createFetchWorker } from './fetch-worker';
import { createAdminApp } from './http/admin-app';
import { QueueDashboard } from './http/queue-dashboard';
import { JobMetrics } from './job-metrics';

/** A part of crathens with a life of its own: a worker, a scheduler. */
export interface CrathensComponent {
  /** For logs, e.g. `fetch-worker`. */
  name: string;
  /** Begins work (a worker takes jobs, a scheduler is upserted); resolves once it has. */
  start(): Promise<void>;
  /** Rejects with the reason while this part cannot work; readiness follows. */
  readiness?(): Promise<void>;
  /**
   * Stops: a worker stops taking jobs, lets running ones finish for up to `graceMs`, then hands
   * the rest back to the queue.
   */
  close(graceMs: number): Promise<void>;
}

/** Everything a worker or scheduler may need; built once by {@link composeCrathens}. */
export interface CrathensContext {
  config: CrathensConfig;
  logger: Logger;
  /** The queue Redis, shared by every queue and worker here; closed by crathens. */
  connection: Redis;
  /** The BullMQ key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** The storage service. */
  storage: ModuleStorage;
  /** The upstream configuration describes (UPSTREAM, GO_*, …). */
  upstream: Upstream;
  /** lathens (Observe after a save), or a provider that tells nobody when LATHENS_GRPC_URL is unset. */
  versions: VersionsProvider;
  /** lathens' client when configured (for Refresh and Invalidate), otherwise undefined. */
  lathens: GrpcVersions | undefined;
  /** Producer of FetchVersion jobs (a crawl queues the versions it found with it). */
  fetchQueue: FetchQueue;
  metrics: HttpMetrics;
  jobMetrics: JobMetrics;
  /** Wrappers of every fetch attempt, outermost first (per-host limits go here). */
  fetchMiddleware: JobMiddleware[];
  /** Worker options every worker here shares: connection, prefix, lock and stall settings. */
  workerDefaults: Pick<
    JobWorkerOptions<never>,
    'connection' | 'prefix' | 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount'
  >;
}

/** Registers workers or schedulers beyond fetch; see extensions.ts. */
export type CrathensExtension = (
  context: CrathensContext,
) => CrathensComponent[] | Promise<CrathensComponent[]>;

export interface CrathensOverrides {
  /** More environment for the go command (tests point git at fixture repositories). */
  goEnv?: Record<string, string>;
  /** Used instead of the chain UPSTREAM describes (tests count calls); not closed by crathens. */
  upstream?: Upstream;
  /** Used instead of {@link crathensExtensions}. */
  extensions?: CrathensExtension[];
}

export interface CrathensComposition {
  context: CrathensContext;
  app: ReturnType<typeof createAdminApp>;
  components: CrathensComponent[];
  /** Resolves with `ok` when Redis and storage answer and every part can work. */
  readiness(): Promise<string>;
  beginShutdown(): void;
  isShuttingDown(): boolean;
  /** Closes the components (graceful up to SHUTDOWN_TIMEOUT_MS each), then every client. */
  close(): Promise<void>;
}

const READINESS_DEADLINE_MS = 2_000;

/** Beyond SHUTDOWN_TIMEOUT_MS, how long shutdown waits for the queues and the queue Redis to close cleanly. */
const QUEUE_CLOSE_WAIT_MS = 5_000;

/** The composition root: configuration in, wired workers out. Logic lives in libs. */
export async function composeCrathens(
  config: CrathensConfig,
  logger: Logger,
  overrides: CrathensOverrides = {},
): Promise<CrathensComposition> {
  const metrics = createHttpMetrics('crathens');
  const jobMetrics = new JobMetrics(metrics.registry);
  const connection = createQueueRedis(config.QUEUE_REDIS_URL, { connectionName: 'crathens' });
  const prefix = config.QUEUE_PREFIX;
  const storage = new GrpcStorage({
    url: config.STORAGE_GRPC_URL ?? '',
    ...(config.STORAGE_TOKEN ? { token: config.STORAGE_TOKEN } : {}),
    tls: grpcClientTls(config.STORAGE_TLS, config.STORAGE_TLS_CA_FILE),
    ...(config.GO_WORK_DIR ? { zipSpoolDir: config.GO_WORK_DIR } : {}),
  });
  const upstream =
    overrides.upstream ??
    createUpstreamFromConfig(config, {
      fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
      ...(overrides.goEnv ? { goEnv: overrides.goEnv } : {}),
      onCall: createUpstreamMetrics(metrics.registry, 'crathens'),
    });
  const lathens = config.LATHENS_GRPC_URL
    ? new GrpcVersions({
        url: config.LATHENS_GRPC_URL,
        ...(config.LATHENS_GRPC_TOKEN ? { token: config.LATHENS_GRPC_TOKEN } : {}),
        tls: grpcClientTls(config.LATHENS_TLS, config.LATHENS_TLS_CA_FILE),
      })
    : undefined;
  const fetchQueue = new FetchQueue({ connection, prefix });
  jobMetrics.watchQueue(fetchQueue.queue);

  const context: CrathensContext = {
    config,
    logger,
    connection,
    prefix,
    storage,
    upstream,
    versions: lathens ?? nobodyToTell,
    lathens,
    fetchQueue,
    metrics,
    jobMetrics,
    fetchMiddleware: [],
    workerDefaults: {
      connection,
      prefix,
      lockDurationMs: config.JOB_LOCK_DURATION_MS,
      stalledIntervalMs: config.JOB_STALLED_INTERVAL_MS,
      maxStalledCount: config.JOB_MAX_STALLED_COUNT,
    },
  };

  // Extensions first: they may add middleware around fetch attempts.
  const components: CrathensComponent[] = [];
  for (const extension of overrides.extensions ?? crathensExtensions) {
    components.push(...(await extension(context)));
  }
  components.unshift(createFetchWorker(context));

  let shuttingDown = false;
  const readiness = async () => {
    if (connection.status !== 'ready') throw new Error(`queue Redis is ${connection.status}`);
    await withDeadline(connection.ping(), 'queue Redis');
    await storage.exists('modproxy.invalid/readiness', 'v0.0.0', {
      signal: AbortSignal.timeout(READINESS_DEADLINE_MS),
    });
    for (const component of components) await component.readiness?.();
    return 'ok';
  };
  // Bull Board behind the admin authentication; without credentials it is off (404).
  const auth = AdminAuth.fromConfig(config);
  const dashboard = auth.mode === 'off' ? undefined : new QueueDashboard({ connection, prefix });
  if (!dashboard)
    logger.info('queue dashboard off: set ADMIN_PASSWORD or ADMIN_TOKEN to serve /admin/queues');
  const app = createAdminApp({
    logger,
    metrics,
    readiness,
    isShuttingDown: () => shuttingDown,
    ...(dashboard ? { dashboard: { auth, queues: dashboard } } : {}),
  });

  return {
    context,
    app,
    components,
    readiness,
    beginShutdown: () => {
      shuttingDown = true;
    },
    isShuttingDown: () => shuttingDown,
    close: async () => {
      // Running jobs get SHUTDOWN_TIMEOUT_MS (then are handed back) while the queue Redis
      // answers; one that is away or refuses us must not hold the process: nothing could be
      // written, and a job cut short is picked up again once its lock expires.
      const clean = await closeQueueConnection(connection, {
        graceMs: config.SHUTDOWN_TIMEOUT_MS + QUEUE_CLOSE_WAIT_MS,
        closeClients: async (force) => {
          await Promise.allSettled(
            components.map((component) =>
              component.close(force ? 0 : config.SHUTDOWN_TIMEOUT_MS).catch((error: unknown) => {
                logger.warn(
                  { component: component.name, err: (error as Error).message },
                  'could not stop cleanly',
                );
              }),
            ),
          );
          await fetchQueue.close().catch(() => undefined);
          await dashboard?.close();
        },
      });
      if (!clean) logger.warn({ redis: connection.status }, 'queue Redis connection dropped at shutdown');
      if (!overrides.upstream) await upstream.close?.();
      await lathens?.close();
      await storage.close();
    },
  };
}

/** Without lathens nobody lists versions from crathens' saves: observe tells no one. */
const nobodyToTell: VersionsProvider = {
  list: async (module) => {
    throw errors.failedPrecondition('crathens.versions', 'crathens answers no list', { module });
  },
  latest: async (module) => {
    throw errors.failedPrecondition('crathens.versions', 'crathens answers no latest', { module });
  },
  observe: async () => undefined,
  close: async () => undefined,
};

async function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${READINESS_DEADLINE_MS} ms`)),
      READINESS_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
