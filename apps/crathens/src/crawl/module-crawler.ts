import { isModuleError, type ModuleError } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import type { UnconfirmedVersions } from '@modproxy/queue';
import type { CallOptions, ModuleStorage } from '@modproxy/storage';
import type { ModuleVersionSource } from '@modproxy/upstream';

/** What the crawl needs of lathens: its list, and a refresh from upstream that every replica then serves. */
export interface ListRefresher {
  list(module: string, options?: CallOptions): Promise<{ versions: string[] }>;
  refreshList(module: string, options?: CallOptions): Promise<{ versions: string[] }>;
}

export interface ModuleCrawlerOptions {
  source: ModuleVersionSource;
  storage: Pick<ModuleStorage, 'list'>;
  /** lathens; without it new versions can only be prefetched, never listed. */
  lathens: ListRefresher | undefined;
  /** Queues a FetchVersion job (deduplicated by its module@version id). */
  queueFetch(module: string, version: string): Promise<unknown>;
  /** Whether new versions of a module are fetched at once (PREFETCH_MODULES). */
  prefetch(module: string): boolean;
  unconfirmed: UnconfirmedVersions;
}

export type CrawlResult =
  /** Listed; `found` are the versions that were new to storage and lathens. */
  | {
      result: 'crawled';
      source: string;
      versions: number;
      found: string[];
      /** lathens was told to refresh (something new was seen). */
      refreshed: boolean;
      /**
       * Versions the source lists that lathens' refreshed list still does not (its upstream
       * differs or lags, or the go command refuses them); remembered like hidden candidates.
       */
      unlisted: string[];
      queued: string[];
    }
  /** The module is not (or no longer) upstream, or is refused by the module filter. */
  | { result: 'not-upstream'; reason: string }
  /** Its code is not in a place the crawl can list (another VCS, a module proxy, ssh). */
  | { result: 'not-crawlable'; reason: string };

/**
 * One module's crawl: what upstream lists (proxy `/@v/list` or `git ls-remote`) against what
 * storage holds and lathens lists. Something new makes lathens refresh the module from
 * upstream (so every replica lists it) and, for PREFETCH_MODULES, queues its fetch. With
 * lathens, a version is new only once its refreshed list (the go command's answer) confirms it:
 * `+incompatible` candidates from tags need that, and versions it does not confirm are
 * remembered, so they do not make every later crawl refresh again. Without lathens, only
 * versions the source lists for certain are prefetched.
 */
export class ModuleCrawler {
  constructor(private readonly options: ModuleCrawlerOptions) {}

  async crawl(module: string, call: CallOptions = {}): Promise<CrawlResult> {
    const { source, storage, lathens, unconfirmed } = this.options;
    let listing;
    try {
      listing = await source.list(module, call);
    } catch (error) {
      const skipped = skipReason(error);
      if (skipped) return skipped;
      throw error;
    }
    const [stored, listed, hidden] = await Promise.all([
      storage.list(module, call).catch((error: unknown) => {
        if (isModuleError(error, 'not-found')) return [] as string[];
        throw error;
      }),
      lathens
        ? lathens.list(module, call).then((answer) => answer.versions, notFoundAsNone)
        : Promise.resolve([]),
      unconfirmed.hidden(module),
    ]);
    const known = new Set([...stored, ...listed]);
    const tagged = new Set([...listing.versions, ...listing.unconfirmed]);
    const candidates = [...tagged].filter((version) => !known.has(version) && !hidden.has(version));
    // Hidden versions whose tags are gone need remembering no longer.
    const stillHidden = [...hidden].filter((version) => tagged.has(version));
    const base = { result: 'crawled' as const, source: listing.source, versions: listing.versions.length };
    if (candidates.length === 0) {
      if (stillHidden.length !== hidden.size) await unconfirmed.remember(module, stillHidden);
      return { ...base, found: [], refreshed: false, unlisted: [], queued: [] };
    }

    let found: string[];
    let unlisted: string[] = [];
    if (lathens) {
      // lathens' refreshed list is the go command's own answer (it reads go.mod files where tags
      // cannot): what it does not list is remembered, so later crawls do not refresh for it again.
      const refreshed = new Set((await lathens.refreshList(module, call)).versions);
      found = candidates.filter((version) => refreshed.has(version));
      const hiddenNow = candidates.filter((version) => !refreshed.has(version));
      unlisted = hiddenNow.filter((version) => listing.versions.includes(version));
      if (hiddenNow.length > 0 || stillHidden.length !== hidden.size)
        await unconfirmed.remember(module, [...stillHidden, ...hiddenNow]);
    } else {
      found = candidates.filter((version) => listing.versions.includes(version));
    }

    const queued: string[] = [];
    if (this.options.prefetch(module)) {
      const storedSet = new Set(stored);
      for (const version of sortVersions(found)) {
        if (storedSet.has(version)) continue;
        await this.options.queueFetch(module, version);
        queued.push(version);
      }
    }
    return { ...base, found: sortVersions(found), refreshed: lathens !== undefined, unlisted, queued };
  }
}

function notFoundAsNone(error: unknown): string[] {
  if (isModuleError(error, 'not-found')) return [];
  throw error;
}

/** Failures that say the module is not to be crawled (no retry helps), with why. */
function skipReason(error: unknown): CrawlResult | undefined {
  if (!isModuleError(error)) return undefined;
  const reason = (error as ModuleError).message;
  if (error.kind === 'not-found' || error.kind === 'gone' || error.kind === 'forbidden')
    return { result: 'not-upstream', reason };
  if (error.kind === 'failed-precondition') return { result: 'not-crawlable', reason };
  return undefined;
}
