import { Counter, type Registry } from '@modproxy/observability';
import type { HostRefusal } from '@modproxy/queue';
import type { CrawlResult } from './module-crawler';

/** Crawl and politeness metrics; labels are bounded (results, reasons, queues), never a module or a host. */
export class CrawlMetrics {
  private readonly crawls: Counter<'result'>;
  private readonly found: Counter;
  private readonly queued: Counter;
  private readonly deferrals: Counter<'queue' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.crawls = new Counter({
      name: 'crathens_crawls_total',
      help: 'Module crawls by result (crawled, not-upstream, not-crawlable)',
      labelNames: ['result'] as const,
      registers,
    });
    this.found = new Counter({
      name: 'crathens_crawl_new_versions_total',
      help: 'Versions a crawl found that neither storage nor lathens had',
      registers,
    });
    this.queued = new Counter({
      name: 'crathens_crawl_prefetches_total',
      help: 'FetchVersion jobs queued by crawls (PREFETCH_MODULES)',
      registers,
    });
    this.deferrals = new Counter({
      name: 'crathens_host_deferrals_total',
      help: 'Jobs moved back to delayed because their host was cooling down, at its concurrency or out of rate tokens',
      labelNames: ['queue', 'reason'] as const,
      registers,
    });
  }

  crawled(result: CrawlResult): void {
    this.crawls.inc({ result: result.result });
    if (result.result !== 'crawled') return;
    this.found.inc(result.found.length);
    this.queued.inc(result.queued.length);
  }

  deferred(queue: string, reason: HostRefusal): void {
    this.deferrals.inc({ queue, reason });
  }
}
