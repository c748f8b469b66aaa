import { ModuleFilter } from '@modproxy/gomod';
import type {
  CallOptions,
  CatalogPage,
  IndexEntry,
  ModuleStorage,
  ModuleVersionRef,
} from '@modproxy/storage';

export interface ModuleFeedsOptions {
  storage: ModuleStorage;
  /** Modules this server refuses are never named in a feed either. @default none refused */
  moduleFilter?: ModuleFilter;
}

export interface FeedCatalogOptions extends CallOptions {
  pageSize: number;
  pageToken?: string;
}

export interface FeedIndexOptions extends CallOptions {
  since?: Date;
  limit: number;
}

/**
 * Storage pages read at most to fill one index answer when the filter hides entries: enough
 * for any sane filter, and a bound on one request's work.
 */
const MAX_INDEX_PAGES = 10;

/**
 * What this server holds, for crawlers and other mirrors: the catalog (every stored version,
 * ordered by module path, in pages) and the index (every stored version in the order it was
 * stored, from a time on). Both come from storage; modules the module filter refuses are left
 * out, as they are never served.
 */
export class ModuleFeeds {
  private readonly storage: ModuleStorage;
  private readonly filter: ModuleFilter;

  constructor(options: ModuleFeedsOptions) {
    this.storage = options.storage;
    this.filter = options.moduleFilter ?? new ModuleFilter();
  }

  /** One catalog page; a page the filter emptied still carries the token to the next. */
  async catalog(options: FeedCatalogOptions): Promise<CatalogPage> {
    const page = await this.storage.catalog(options);
    return this.filter.active ? { ...page, entries: page.entries.filter((e) => this.shown(e)) } : page;
  }

  /**
   * Up to `limit` versions stored at or after `since`, oldest first: the next call's `since`
   * is the last entry's time (which that call repeats, as the public module index does).
   */
  async index(options: FeedIndexOptions): Promise<IndexEntry[]> {
    const entries: IndexEntry[] = [];
    let pageToken: string | undefined;
    for (let pages = 0; pages < MAX_INDEX_PAGES && entries.length < options.limit; pages++) {
      const page = await this.storage.index({
        limit: options.limit - entries.length,
        ...(options.since ? { since: options.since } : {}),
        ...(pageToken === undefined ? {} : { pageToken }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      entries.push(...page.entries.filter((e) => this.shown(e)));
      pageToken = page.nextPageToken;
      if (pageToken === undefined) break;
    }
    return entries;
  }

  private shown(entry: ModuleVersionRef): boolean {
    return this.filter.allows(entry.module);
  }
}
