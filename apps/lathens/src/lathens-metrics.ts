import type { Queue } from 'bullmq';
import {
  Counter,
  createGrpcServerMetrics,
  createHttpMetrics,
  createUpstreamMetrics,
  Gauge,
  Histogram,
  type HttpMetrics,
  type UpstreamCallSample,
} from '@modproxy/observability';
import { QueueDepthReader } from '@modproxy/queue';
import type { GrpcServedCall } from '@modproxy/grpc';
import type { AnswerOutcome, CachedVersionsEvents } from '@modproxy/versions';

const KINDS = ['list', 'latest'] as const;
/** The queue states whose sizes `/metrics` shows. */
const DEPTH_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** Outcomes that exist from the start (at zero), so the freshness panels and alerts have series. */
const OUTCOMES: readonly AnswerOutcome[] = [
  'fresh',
  'revalidating',
  'refreshed',
  'waited',
  'fallback',
  'failed',
];

/**
 * lathens' metrics: HTTP and gRPC requests, how list/latest answers were reached (the cache's
 * hits and misses), stale answers, revalidations and their queue, coalesced waits, upstream
 * calls, and Redis. Labels never name a module.
 */
export class LathensMetrics {
  readonly http: HttpMetrics;
  /** Give to the gRPC server (`onCall`). */
  readonly grpcCall: (call: GrpcServedCall) => void;
  /** Give to the upstream (`onCall`). */
  readonly upstreamCall: (call: UpstreamCallSample) => void;
  readonly answers: Counter<'kind' | 'outcome'>;
  readonly upstreamCalls: Counter<'kind' | 'result'>;
  readonly staleServed: Counter<'kind'>;
  readonly storeFailures: Counter<'operation'>;
  readonly revalidationFailures: Counter;
  private readonly coalescedWaits: Counter<'kind' | 'scope'>;
  private readonly revalidations: Counter<'result'>;
  private readonly revalidationDuration: Histogram<'result'>;
  private readonly redisUp: Gauge;

  constructor() {
    this.http = createHttpMetrics('lathens');
    const registry = this.http.registry;
    const registers = [registry];
    this.grpcCall = createGrpcServerMetrics(registry, 'lathens');
    this.upstreamCall = createUpstreamMetrics(registry, 'lathens');
    this.answers = new Counter({
      name: 'lathens_answers_total',
      help: 'list/latest answers by kind and how they were reached (fresh, revalidating, refreshed, waited, fallback, ...)',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    });
    this.upstreamCalls = new Counter({
      name: 'lathens_upstream_calls_total',
      help: 'Upstream list/latest calls by kind and result',
      labelNames: ['kind', 'result'] as const,
      registers,
    });
    this.staleServed = new Counter({
      name: 'lathens_stale_served_total',
      help: 'Answers served stale because upstream failed',
      labelNames: ['kind'] as const,
      registers,
    });
    this.storeFailures = new Counter({
      name: 'lathens_store_failures_total',
      help: 'Redis operations that failed (the request was answered without the cache)',
      labelNames: ['operation'] as const,
      registers,
    });
    this.revalidationFailures = new Counter({
      name: 'lathens_revalidation_failures_total',
      help: 'Background revalidations that could not be queued or failed',
      registers,
    });
    this.coalescedWaits = new Counter({
      name: 'lathens_coalesced_waits_total',
      help: 'Refreshes that waited for one already under way instead of asking upstream: scope process (joined it here) or replica (another replica held the lease)',
      labelNames: ['kind', 'scope'] as const,
      registers,
    });
    this.revalidations = new Counter({
      name: 'lathens_revalidations_total',
      help: 'Background revalidation jobs run by this replica, by result (ok, failed)',
      labelNames: ['result'] as const,
      registers,
    });
    this.revalidationDuration = new Histogram({
      name: 'lathens_revalidation_duration_seconds',
      help: 'How long background revalidation jobs took, by result',
      labelNames: ['result'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.redisUp = new Gauge({
      name: 'lathens_redis_up',
      help: '1 while the cache Redis is connected',
      registers,
    });
    for (const kind of KINDS) {
      this.staleServed.inc({ kind }, 0);
      for (const outcome of OUTCOMES) this.answers.inc({ kind, outcome }, 0);
      for (const scope of ['process', 'replica']) this.coalescedWaits.inc({ kind, scope }, 0);
    }
    for (const result of ['ok', 'failed']) this.revalidations.inc({ result }, 0);
  }

  /** For CachedVersions' `coalesced` event. */
  readonly coalesced: NonNullable<CachedVersionsEvents['coalesced']> = (kind, scope) => {
    this.coalescedWaits.inc({ kind, scope });
  };

  /** Runs one revalidation job and records how it ended. */
  async revalidation(run: () => Promise<void>): Promise<void> {
    const started = performance.now();
    let result = 'failed';
    try {
      await run();
      result = 'ok';
    } finally {
      this.revalidations.inc({ result });
      this.revalidationDuration.observe({ result }, (performance.now() - started) / 1_000);
    }
  }

  /** Shows the revalidation queue's depth by state, read from Redis at scrape time. */
  watchRevalidationQueue(queue: Queue): void {
    const depths = new QueueDepthReader(queue, DEPTH_STATES);
    new Gauge({
      name: 'lathens_revalidation_queue_jobs',
      help: 'Revalidation jobs in the shared queue by state, read from Redis at scrape time',
      labelNames: ['state'] as const,
      registers: [this.http.registry],
      async collect() {
        // Under a deadline: a queue Redis that is away must not hold the whole scrape.
        const counts = await depths.read();
        if (!counts) return;
        for (const state of DEPTH_STATES) this.set({ state }, counts[state]);
      },
    });
  }

  setRedisUp(up: boolean): void {
    this.redisUp.set(up ? 1 : 0);
  }
}
