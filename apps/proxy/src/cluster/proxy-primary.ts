import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { configSecrets, SecretRedactor } from '@modproxy/config';
import { urlHost } from '@modproxy/http';
import { InProcessFetcher } from '@modproxy/module-service';
import { Counter, Gauge, type Logger } from '@modproxy/observability';
import { createQueueRedis } from '@modproxy/queue';
import { ProxyStatus } from '@modproxy/status-page';
import type { ModuleStorage } from '@modproxy/storage';
import { createUpstreamFromConfig, type Upstream } from '@modproxy/upstream';
import { closeHttp } from '@modproxy/http';
import { createProxyVersions, createStorage, fetchEvents } from '../compose';
import type { ProxyConfig } from '../config';
import { ProxyMetrics } from '../proxy-metrics';
import { startAdmin, startFetchDirSweeps } from '../server';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from './cluster-messages';
import { ClusterMetrics } from './cluster-metrics';
import { createPrimaryPurge, type PrimaryPurge } from './primary-purge';
import { WorkerRequests } from './worker-requests';

/** A worker that dies younger than this counts as failing at start-up: the next one waits. */
const QUICK_DEATH_MS = 10_000;
const MAX_RESPAWN_DELAY_MS = 30_000;
/** Beyond the workers' own drain (SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS), before SIGKILL. */
const SHUTDOWN_MARGIN_MS = 10_000;

/** What the primary owns besides its workers; absent with the fetch queue, where crathens fetches. */
interface Fetching {
  storage: ModuleStorage;
  upstream: Upstream;
  fetcher: InProcessFetcher;
}

/**
 * The primary process of `WORKERS` > 1 (node:cluster): forks the workers, which share the
 * listening port and each serve requests with their own composition, and owns what must be
 * one per machine:
 * - the fetches: every worker's miss comes here over IPC to one InProcessFetcher (SingleFlight),
 *   so a version is fetched once however many workers ask (with QUEUE_REDIS_URL the workers
 *   use the fetch queue instead, which is already one job per version);
 * - `/metrics`: every worker's registry and its own, aggregated (ClusterMetrics);
 * - the admin port and the sweeps of leftover fetch directories;
 * - the workers' lives: a worker that dies is replaced (with a growing pause when it keeps dying
 *   at start-up); SIGTERM stops them with SIGTERM, each drains as a single process does, and
 *   the primary exits 0 once all have.
 */
export class ProxyPrimary {
  private readonly bornAt = new Map<Worker, number>();
  private stopping = false;
  private quickDeaths = 0;
  private respawnTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    /** The workers alive now. */
    private readonly live: Set<Worker>,
    /** Those of them that listen (a replacement starting up does not yet). */
    private readonly listening: WeakSet<Worker>,
    private readonly config: ProxyConfig,
    private readonly logger: Logger,
    private readonly count: number,
    private readonly metrics: ProxyMetrics,
    private readonly requests: WorkerRequests | undefined,
    private readonly clusterMetrics: ClusterMetrics,
    private readonly restarts: Counter,
    private readonly fetching: Fetching | undefined,
    private readonly status: ProxyStatus,
    private readonly closeStatusQueue: () => Promise<void>,
  ) {}

  /** Forks `count` workers and resolves once every one listens, with the URL they serve. */
  static async start(
    config: ProxyConfig,
    logger: Logger,
    count: number,
  ): Promise<{ primary: ProxyPrimary; url: string }> {
    const metrics = new ProxyMetrics();
    const registers = [metrics.http.registry];
    const queueConnection = config.QUEUE_REDIS_URL
      ? createQueueRedis(config.QUEUE_REDIS_URL, { connectionName: 'modproxy-proxy-primary' })
      : undefined;
    const redactor = new SecretRedactor(configSecrets(config));
    const status = new ProxyStatus({
      ...(queueConnection ? { queue: { connection: queueConnection, prefix: config.QUEUE_PREFIX } } : {}),
      redact: (text) => redactor.redact(text),
    });
    let fetching: Fetching | undefined;
    let requests: WorkerRequests | undefined;
    if (!config.QUEUE_REDIS_URL) {
      const storage = await createStorage(config);
      const upstream = createUpstreamFromConfig(config, {
        fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
        onCall: metrics.upstreamCall,
      });
      const { versions } = createProxyVersions(config, storage, upstream, logger, metrics);
      requests = new WorkerRequests({ versions });
      const fetcher = new InProcessFetcher({
        storage,
        upstream,
        versions: requests,
        fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
        events: fetchEvents(logger, metrics, status),
      });
      requests.useFetcher(fetcher);
      metrics.watchFetchesInFlight(() => fetcher.inFlight);
      fetching = { storage, upstream, fetcher };
    }
    const live = new Set<Worker>();
    const listening = new WeakSet<Worker>();
    const clusterMetrics = new ClusterMetrics(metrics.http.registry, () => live);
    new Gauge({
      name: 'modproxy_workers',
      help: 'Worker processes listening for requests (WORKERS > 1; the primary fetches and gathers metrics)',
      registers,
      collect() {
        this.set([...live].filter((worker) => listening.has(worker)).length);
      },
    });
    const restarts = new Counter({
      name: 'modproxy_worker_restarts_total',
      help: 'Worker processes that exited unasked and were replaced',
      registers,
    });
    const primary = new ProxyPrimary(
      live,
      listening,
      config,
      logger,
      count,
      metrics,
      requests,
      clusterMetrics,
      restarts,
      fetching,
      status,
      async () => {
        await status.close().catch(() => undefined);
        if (queueConnection) await queueConnection.quit().catch(() => queueConnection.disconnect());
      },
    );
    const url = await primary.forkAll();
    return { primary, url };
  }

  /** Readiness off and drain in every worker (SIGTERM), then the primary's own clients. */
  shutdown(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async forkAll(): Promise<string> {
    cluster.on('message', (worker, message: unknown) => {
      if (isWorkerMessage(message)) this.receive(worker, message);
    });
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    const purge = await createPrimaryPurge(this.config, this.logger, this.fetching?.storage);
    const admin = await startAdmin(this.config, this.status, this.logger, (module, version) =>
      purge.purge(module, version),
    );
    const sweeps = startFetchDirSweeps(this.config, this.logger);
    this.housekeeping = { admin, sweeps, purge };
    try {
      const addresses = await Promise.all(Array.from({ length: this.count }, () => this.fork()));
      const port = addresses[0]?.port ?? this.config.PORT;
      return this.config.PUBLIC_URL ?? `http://${urlHost(this.config.HOST)}:${port}`;
    } catch (error) {
      await this.shutdown().catch(() => undefined);
      throw error;
    }
  }

  private housekeeping:
    | {
        admin: Awaited<ReturnType<typeof startAdmin>>;
        sweeps: { stop(): Promise<void> };
        purge: PrimaryPurge;
      }
    | undefined;

  /** Forks one worker; resolves with its listening address, rejects if it exits first. */
  private fork(): Promise<AddressInfo> {
    const worker = cluster.fork();
    this.live.add(worker);
    this.bornAt.set(worker, Date.now());
    this.requests?.attach(worker);
    return new Promise<AddressInfo>((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) =>
        reject(new Error(`worker ${worker.id} exited (${signal ?? code ?? 'unknown'}) before it listened`));
      worker.once('exit', onExit);
      worker.once('listening', (address: AddressInfo) => {
        this.listening.add(worker);
        worker.off('exit', onExit);
        resolve(address);
      });
    });
  }

  private receive(worker: Worker, message: WorkerMessage): void {
    switch (message.type) {
      case 'modproxy:fetch':
        this.requests?.fetch(
          worker,
          message.id,
          message.module,
          message.version,
          message.trace,
          message.goModSha256,
        );
        return;
      case 'modproxy:enqueue':
        this.requests?.enqueue(message.module, message.version, message.trace);
        return;
      case 'modproxy:versions':
        this.requests?.answer(worker, message.id, message.kind, message.module, message.trace);
        return;
      case 'modproxy:scrape':
        void this.clusterMetrics.scrape().then(
          (text) => this.send(worker, { type: 'modproxy:scraped', id: message.id, text }),
          (error: unknown) => {
            this.logger.warn({ err: error }, 'could not gather the workers’ metrics');
            this.send(worker, { type: 'modproxy:scraped', id: message.id, text: '' });
          },
        );
        return;
      case 'modproxy:metrics':
        this.clusterMetrics.received(message.id, message.metrics);
        return;
    }
  }

  private send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message);
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    this.live.delete(worker);
    const lived = Date.now() - (this.bornAt.get(worker) ?? 0);
    this.bornAt.delete(worker);
    if (this.stopping) return;
    this.restarts.inc();
    this.quickDeaths = lived < QUICK_DEATH_MS ? this.quickDeaths + 1 : 0;
    const delayMs =
      this.quickDeaths === 0 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 500 * 2 ** (this.quickDeaths - 1));
    this.logger.warn(
      { worker: worker.id, pid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delayMs },
      'worker exited; starting another',
    );
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = undefined;
      if (this.stopping) return;
      this.fork().catch((error: unknown) => this.logger.warn({ err: error }, 'replacement worker failed'));
    }, delayMs);
  }

  private async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.respawnTimer);
    const workers = [...this.live];
    // A clean stop is exit 0, or our SIGTERM itself for a worker still starting (it handles the
    // signal only once it serves).
    const exits = workers.map(
      (worker) =>
        new Promise<string>((resolve) => {
          const outcome = (code: number | null, signal: string | null) =>
            code === 0 || signal === 'SIGTERM' ? 'clean' : String(signal ?? code);
          if (worker.process.exitCode !== null || worker.process.signalCode !== null) {
            return resolve(outcome(worker.process.exitCode, worker.process.signalCode));
          }
          worker.once('exit', (code: number | null, signal: string | null) => resolve(outcome(code, signal)));
        }),
    );
    // Not worker.kill(): it disconnects first, and a worker whose channel closes exits at once
    // instead of draining. SIGTERM is the same graceful path as a single process.
    for (const worker of workers) worker.process.kill('SIGTERM');
    const graceMs = this.config.SHUTDOWN_DELAY_MS + this.config.SHUTDOWN_TIMEOUT_MS + SHUTDOWN_MARGIN_MS;
    const timer = setTimeout(() => {
      for (const worker of this.live) worker.process.kill('SIGKILL');
    }, graceMs);
    const outcomes = await Promise.all(exits);
    clearTimeout(timer);
    if (this.housekeeping?.admin) await closeHttp(this.housekeeping.admin.server, 1_000);
    await this.housekeeping?.sweeps.stop();
    await this.housekeeping?.purge.close();
    await this.requests?.close();
    await this.fetching?.upstream.close?.();
    await this.fetching?.storage.close();
    await this.closeStatusQueue();
    const failed = outcomes.filter((outcome) => outcome !== 'clean');
    if (failed.length > 0)
      throw new Error(`${failed.length} worker(s) did not stop cleanly (${failed.join(', ')})`);
    this.logger.info({ workers: workers.length }, 'proxy stopped');
  }
}
