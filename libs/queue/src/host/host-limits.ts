/** How hard one source host may be asked. */
export interface HostLimit {
  /** Requests in flight at once, across every worker process. */
  concurrency: number;
  /** Requests started per second, on average; 0 for no rate limit. */
  ratePerSecond: number;
  /** Requests that may start back to back after a quiet spell (the token bucket's size). */
  burst: number;
}

/** A per-host override: any field left out keeps the default. */
export type HostLimitOverride = Partial<HostLimit>;

/**
 * The limit of every host: one default, and overrides by exact host name (lower case, with a
 * `:port` when the host is named with one), e.g. a larger limit for a company's own mirror.
 */
export class HostLimitTable {
  private readonly overrides: ReadonlyMap<string, HostLimit>;

  constructor(
    readonly defaults: HostLimit,
    overrides: Readonly<Record<string, HostLimitOverride>> = {},
  ) {
    const table = new Map<string, HostLimit>();
    for (const [host, override] of Object.entries(overrides)) {
      const ratePerSecond = override.ratePerSecond ?? defaults.ratePerSecond;
      table.set(normalizeHost(host), {
        concurrency: override.concurrency ?? defaults.concurrency,
        ratePerSecond,
        burst: override.burst ?? defaultBurst(ratePerSecond, defaults),
      });
    }
    this.overrides = table;
  }

  limitFor(host: string): HostLimit {
    return this.overrides.get(normalizeHost(host)) ?? this.defaults;
  }
}

/**
 * An override of the rate alone gets a burst of one second's worth of that rate, the same
 * proportion as the default (a burst chosen for 10/s would be wrong for 100/s).
 */
function defaultBurst(ratePerSecond: number, defaults: HostLimit): number {
  if (ratePerSecond === defaults.ratePerSecond) return defaults.burst;
  return Math.max(1, Math.ceil(ratePerSecond));
}

/** Host names compare case-insensitively; a trailing dot names the same host. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}
