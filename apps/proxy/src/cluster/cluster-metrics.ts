import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from '@modproxy/observability';
import type { MetricsJson, PrimaryMessage } from './cluster-messages';

/** How long the primary waits for each worker's metrics before it answers without them. */
const COLLECT_TIMEOUT_MS = 2_000;

/**
 * `/metrics` across processes: whichever worker is scraped asks the primary, which gathers every
 * worker's registry (and its own: fetches, upstream calls, workers) and merges them with
 * prom-client's AggregatorRegistry (counters and histograms summed, process gauges as
 * prom-client aggregates them), so a scrape sees the whole proxy whichever worker answers it.
 */
export class ClusterMetrics {
  private nextId = 1;
  private readonly waiting = new Map<number, (metrics: MetricsJson) => void>();

  constructor(
    private readonly own: Registry,
    private readonly workers: () => Iterable<Worker>,
  ) {}

  /** A worker answered a `collect`. */
  received(id: number, metrics: MetricsJson): void {
    this.waiting.get(id)?.(metrics);
  }

  async scrape(): Promise<string> {
    const parts = await Promise.all([
      this.own.getMetricsAsJSON(),
      ...[...this.workers()].filter((worker) => worker.isConnected()).map((worker) => this.collect(worker)),
    ]);
    return AggregatorRegistry.aggregate(parts).metrics();
  }

  private collect(worker: Worker): Promise<MetricsJson> {
    const id = this.nextId++;
    return new Promise<MetricsJson>((resolve) => {
      const done = (metrics: MetricsJson) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(metrics);
      };
      // A worker that is stuck or exiting costs its share of the scrape, never the scrape.
      const timer = setTimeout(() => done([]), COLLECT_TIMEOUT_MS);
      this.waiting.set(id, done);
      worker.send({ type: 'modproxy:collect', id } satisfies PrimaryMessage);
    });
  }
}
