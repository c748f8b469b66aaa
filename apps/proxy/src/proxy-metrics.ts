import type { Queue } from 'bullmq';
import type { ModuleError } from '@modproxy/errors';
import {
  Counter,
  createHttpMetrics,
  createUpstreamMetrics,
  Gauge,
  Histogram,
  type HttpMetrics,
  type UpstreamCallSample,
} from '@modproxy/observability';
import { QueueDepthReader } from '@modproxy/queue';

/** The fetch queue's states shown in `/metrics`. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

/**
 * The proxy's metrics beside the HTTP ones. Labels are endpoints, results and causes: a
 * bounded set, never a module path or a version.
 */
export class ProxyMetrics {
  readonly http: HttpMetrics;
  /** Give to the upstream (`onCall`). */
  readonly upstreamCall: (call: UpstreamCallSample) => void;
  private readonly fetches: Counter<'result'>;
  private readonly fetchDuration: Histogram;
  private readonly cache: Counter<'endpoint' | 'result'>;
  private readonly staleAnswers: Counter<'operation'>;
  private readonly lathensFailovers: Counter<'operation'>;
  private readonly queuedFetches: Counter<'mode' | 'outcome'>;
  private readonly queuedFetchWait: Histogram<'outcome'>;
  private readonly goModMismatches: Counter<'found'>;

  constructor() {
    this.http = createHttpMetrics('modproxy');
    const registers = [this.http.registry];
    this.upstreamCall = createUpstreamMetrics(this.http.registry, 'modproxy');
    this.fetches = new Counter({
      name: 'modproxy_fetches_total',
      help: 'Module versions fetched from upstream, by result (stored, or the error kind)',
      labelNames: ['result'] as const,
      registers,
    });
    this.fetchDuration = new Histogram({
      name: 'modproxy_fetch_duration_seconds',
      help: 'How long fetching and storing one module version took (upstream, verification, save)',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.cache = new Counter({
      name: 'modproxy_cache_requests_total',
      help: '.info, .mod and .zip of canonical versions by endpoint and result: hit (served from storage) or miss (fetched first)',
      labelNames: ['endpoint', 'result'] as const,
      registers,
    });
    this.staleAnswers = new Counter({
      name: 'modproxy_stale_answers_total',
      help: 'list/latest answers served stale (from cache or storage) because upstream failed',
      labelNames: ['operation'] as const,
      registers,
    });
    this.lathensFailovers = new Counter({
      name: 'modproxy_lathens_failovers_total',
      help: 'list/latest answered without lathens because it could not answer',
      labelNames: ['operation'] as const,
      registers,
    });
    this.queuedFetches = new Counter({
      name: 'modproxy_queue_fetches_total',
      help: 'Misses handed to the fetch queue (crathens fetches them), by mode (wait: sync, the request waits; enqueue: async) and outcome (completed, queued, or the error kind)',
      labelNames: ['mode', 'outcome'] as const,
      registers,
    });
    this.queuedFetchWait = new Histogram({
      name: 'modproxy_queue_fetch_wait_seconds',
      help: 'How long a request waited for its queued fetch, by outcome (completed, or the error kind)',
      labelNames: ['outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.goModMismatches = new Counter({
      name: 'modproxy_go_mod_mismatches_total',
      help: 'Versions whose zip has another go.mod than the one served before the zip was verified: zip (refused, nothing stored) or stored (stored by a fetch that did not know what this replica served)',
      labelNames: ['found'] as const,
      registers,
    });
    for (const found of ['zip', 'stored']) this.goModMismatches.inc({ found }, 0);
    // Every series a rate or an alert reads exists from the start, at zero.
    for (const endpoint of ['info', 'mod', 'zip']) {
      for (const result of ['hit', 'miss']) this.cache.inc({ endpoint, result }, 0);
    }
    for (const operation of ['list', 'latest']) {
      this.staleAnswers.inc({ operation }, 0);
      this.lathensFailovers.inc({ operation }, 0);
    }
    this.fetches.inc({ result: 'stored' }, 0);
  }

  /** Fetches under way right now, read at scrape time. */
  watchFetchesInFlight(read: () => number): void {
    new Gauge({
      name: 'modproxy_fetches_in_flight',
      help: 'Module versions being fetched right now (concurrent requests for one version share one fetch)',
      registers: [this.http.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /**
   * Shows the fetch queue from the producer's side, read at scrape time: its jobs by state (the
   * same queue crathens reports) and this replica's requests waiting for a fetch.
   */
  watchFetchQueue(queue: Queue, waiters: () => number): void {
    const registers = [this.http.registry];
    const depths = new QueueDepthReader(queue, QUEUE_STATES);
    new Gauge({
      name: 'modproxy_queue_jobs',
      help: 'Jobs in the fetch queue by state, read from Redis at scrape time',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        // Under a deadline: a queue Redis that is away must not hold the whole scrape.
        const counts = await depths.read();
        if (!counts) return;
        for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state]);
      },
    });
    new Gauge({
      name: 'modproxy_queue_fetch_waiters',
      help: 'Requests of this replica waiting for a queued fetch right now',
      registers,
      collect() {
        this.set(waiters());
      },
    });
  }

  /** A miss handed to the fetch queue ended: waited for (`wait`) or only queued (`enqueue`). */
  queuedFetch(mode: 'wait' | 'enqueue', outcome: string, durationMs: number): void {
    this.queuedFetches.inc({ mode, outcome });
    if (mode === 'wait') this.queuedFetchWait.observe({ outcome }, durationMs / 1_000);
  }

  fetched(durationMs: number): void {
    this.fetches.inc({ result: 'stored' });
    this.fetchDuration.observe(durationMs / 1_000);
  }

  /** A go.mod served before its zip was verified is not the zip's. */
  goModMismatch(found: 'zip' | 'stored'): void {
    this.goModMismatches.inc({ found });
  }

  fetchFailed(error: ModuleError): void {
    this.fetches.inc({ result: error.kind });
  }

  /** A canonical version's .info, .mod or .zip was served: from storage (a hit) or fetched first (a miss). */
  served(endpoint: 'info' | 'mod' | 'zip', source: 'storage' | 'fetched'): void {
    this.cache.inc({ endpoint, result: source === 'storage' ? 'hit' : 'miss' });
  }

  staleAnswer(operation: 'list' | 'latest'): void {
    this.staleAnswers.inc({ operation });
  }

  lathensFailover(operation: 'list' | 'latest'): void {
    this.lathensFailovers.inc({ operation });
  }
}
