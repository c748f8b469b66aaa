import type { CachedFile, ContentCacheEvents, ContentCacheStats, ReadSource } from '@modproxy/content-cache';
import { Counter, Gauge, type Logger, type Registry } from '@modproxy/observability';

const FILES: readonly CachedFile[] = ['info', 'mod', 'zip'];
const SOURCES: readonly ReadSource[] = ['memory', 'disk', 'storage'];
const TIERS = ['memory', 'disk'] as const;

/** A child counter's `inc`, bound once: the hot path does no label lookup. */
type Increment = (value?: number) => void;

/**
 * The content cache's metrics (`modproxy_content_cache_*`): reads by file and where they were
 * answered from, what each tier holds against its bound, evictions, fills, invalidations.
 * Labels are files, sources, tiers, reasons and results: never a module path or a version.
 */
export class ContentCacheMetrics {
  /** Give to the cache (`events`). */
  readonly events: ContentCacheEvents;
  private readonly reads = new Map<string, Increment>();
  /** What the gauges read at scrape time. */
  private stats: () => ContentCacheStats | undefined = () => undefined;

  constructor(registry: Registry, logger: Logger) {
    const registers = [registry];
    const reads = new Counter({
      name: 'modproxy_content_cache_reads_total',
      help: 'Reads of a canonical version’s .info, .mod and .zip by where they were answered from: memory, disk (this replica’s cache) or storage (a miss)',
      labelNames: ['file', 'source'] as const,
      registers,
    });
    for (const file of FILES) {
      for (const source of SOURCES) {
        const child = reads.labels(file, source);
        child.inc(0);
        this.reads.set(`${file} ${source}`, (value) => child.inc(value));
      }
    }
    const evicted = new Counter({
      name: 'modproxy_content_cache_evicted_bytes_total',
      help: 'Bytes that left a tier of the content cache, by reason: size (room for newer entries), invalidated (a purge), cleared (invalidations may have been missed)',
      labelNames: ['tier', 'reason'] as const,
      registers,
    });
    const fills = new Counter({
      name: 'modproxy_content_cache_fills_total',
      help: 'Zips copied into a tier: stored, discarded (purged while copying) or failed (storage failed mid-zip, a size or SHA-256 mismatch, the disk)',
      labelNames: ['tier', 'result'] as const,
      registers,
    });
    const invalidations = new Counter({
      name: 'modproxy_content_cache_invalidations_total',
      help: 'Purges applied to this replica’s content cache, by origin: local (a purge made here) or bus (another replica or process)',
      labelNames: ['origin'] as const,
      registers,
    });
    const clears = new Counter({
      name: 'modproxy_content_cache_clears_total',
      help: 'Times the whole content cache was dropped because invalidations may have been missed',
      registers,
    });
    for (const tier of TIERS) {
      for (const reason of ['size', 'invalidated', 'cleared']) evicted.inc({ tier, reason }, 0);
      for (const result of ['stored', 'discarded', 'failed']) fills.inc({ tier, result }, 0);
    }
    for (const origin of ['local', 'bus']) invalidations.inc({ origin }, 0);
    clears.inc(0);
    this.events = {
      read: (file, source) => this.reads.get(`${file} ${source}`)?.(),
      evicted: (tier, reason, bytes) => evicted.inc({ tier, reason }, bytes),
      filled: (tier, result) => fills.inc({ tier, result }),
      fillFailed: (tier, error) => {
        fills.inc({ tier, result: 'failed' });
        logger.warn(
          { module: error.module, version: error.version, tier, kind: error.kind, err: error.message },
          'content cache: a zip could not be kept',
        );
      },
      invalidated: (origin) => invalidations.inc({ origin }),
      cleared: (reason) => {
        clears.inc();
        logger.warn({ reason }, 'content cache dropped everything');
      },
      diskTierUnavailable: (reason) =>
        logger.warn(
          { reason },
          'content cache: no disk tier (give every process a writable CACHE_DIR of its own)',
        ),
    };
    const stats = () => this.stats();
    new Gauge({
      name: 'modproxy_content_cache_bytes',
      help: 'Bytes the content cache holds, by tier (memory: with per-entry overhead)',
      labelNames: ['tier'] as const,
      registers,
      collect() {
        const now = stats();
        for (const tier of TIERS) this.set({ tier }, now?.[tier].bytes ?? 0);
      },
    });
    new Gauge({
      name: 'modproxy_content_cache_max_bytes',
      help: 'The byte bound of each tier of the content cache (0: the tier is off)',
      labelNames: ['tier'] as const,
      registers,
      collect() {
        const now = stats();
        for (const tier of TIERS) this.set({ tier }, now?.[tier].maxBytes ?? 0);
      },
    });
    new Gauge({
      name: 'modproxy_content_cache_entries',
      help: 'Files (memory) and zips (disk) the content cache holds, by tier',
      labelNames: ['tier'] as const,
      registers,
      collect() {
        const now = stats();
        for (const tier of TIERS) this.set({ tier }, now?.[tier].entries ?? 0);
      },
    });
  }

  /** The cache whose tiers the gauges show. */
  watch(read: () => ContentCacheStats): void {
    this.stats = read;
  }
}
