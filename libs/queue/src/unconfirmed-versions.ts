import type { Redis } from 'ioredis';
import { DEFAULT_QUEUE_PREFIX } from './queue-names';

export interface UnconfirmedVersionsOptions {
  redis: Redis;
  /** @default 'modproxy' */
  prefix?: string;
  /** How long a module's hidden candidates are remembered after its last crawl. @default 30 days */
  ttlMs?: number;
}

/**
 * What the crawl learned about a module's `+incompatible` candidates (v2+ tags of a module
 * without a major suffix, which the go command lists only when the tagged commit has no
 * go.mod): those lathens' refreshed list did not confirm, so later crawls do not ask lathens to
 * refresh for them again. One key per module, expiring.
 */
export class UnconfirmedVersions {
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(private readonly options: UnconfirmedVersionsOptions) {
    this.prefix = `${options.prefix ?? DEFAULT_QUEUE_PREFIX}:crawl:hidden:`;
    this.ttlMs = options.ttlMs ?? 30 * 24 * 3_600_000;
  }

  /** Candidates of `module` known not to be listed. */
  async hidden(module: string): Promise<Set<string>> {
    const text = await this.options.redis.get(this.prefix + module);
    if (!text) return new Set();
    try {
      const parsed: unknown = JSON.parse(text);
      return new Set(Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : []);
    } catch {
      return new Set();
    }
  }

  /** Replaces what is known of `module`'s hidden candidates (none: forgets the module). */
  async remember(module: string, hidden: Iterable<string>): Promise<void> {
    const list = [...new Set(hidden)].sort();
    if (list.length === 0) await this.options.redis.del(this.prefix + module);
    else await this.options.redis.set(this.prefix + module, JSON.stringify(list), 'PX', this.ttlMs);
  }
}
