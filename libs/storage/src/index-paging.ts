import { errors } from '@modproxy/errors';
import { isCanonicalVersion, isValidModulePath } from '@modproxy/gomod';
import { MAX_CATALOG_PAGE_SIZE } from './catalog-paging';
import type { IndexEntry, IndexOptions, IndexPage } from './module-storage';
import { decodePageToken, encodePageToken } from './page-token';

/** Largest page an index call may ask for (the catalog's). */
export const MAX_INDEX_PAGE_SIZE = MAX_CATALOG_PAGE_SIZE;

/**
 * Index order: stored time, then module path, then version, in plain byte order (valid paths
 * and versions are ASCII). Times are compared to the millisecond, the precision every backend
 * keeps, so a tie never depends on which backend recorded it.
 */
export function compareIndexEntries(a: IndexEntry, b: IndexEntry): number {
  const at = a.storedAt.getTime();
  const bt = b.storedAt.getTime();
  if (at !== bt) return at < bt ? -1 : 1;
  if (a.module !== b.module) return a.module < b.module ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  return 0;
}

/** The page token naming `last`, the final entry of a page: base64url of a JSON triple. */
export function encodeIndexToken(last: IndexEntry): string {
  return encodePageToken([last.storedAt.getTime(), last.module, last.version]);
}

/** The entry a page token names; invalid-argument for anything {@link encodeIndexToken} did not make. */
export function decodeIndexToken(op: string, token: string): IndexEntry {
  return decodePageToken(
    op,
    token,
    'index',
    3,
    ([ms, module, version]) =>
      typeof ms === 'number' &&
      Number.isSafeInteger(ms) &&
      ms >= 0 &&
      typeof module === 'string' &&
      typeof version === 'string' &&
      isValidModulePath(module) &&
      isCanonicalVersion(version)
        ? { module, version, storedAt: new Date(ms) }
        : undefined,
    encodeIndexToken,
  );
}

export interface IndexRequest {
  limit: number;
  /** Versions stored before this are left out. */
  since: Date | undefined;
  /** Entries up to and including this one were on earlier pages. */
  after: IndexEntry | undefined;
}

/** Validates limit, since and token; invalid-argument when any is unusable. */
export function parseIndexOptions(op: string, options: IndexOptions): IndexRequest {
  const { limit, since, pageToken } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_INDEX_PAGE_SIZE) {
    throw errors.invalidArgument(op, `limit must be an integer from 1 to ${MAX_INDEX_PAGE_SIZE}`);
  }
  if (since !== undefined && (!(since instanceof Date) || Number.isNaN(since.getTime()))) {
    throw errors.invalidArgument(op, 'since must be a valid date');
  }
  const after = pageToken === undefined || pageToken === '' ? undefined : decodeIndexToken(op, pageToken);
  return { limit, since, after };
}

/** Whether `entry` belongs on this page or a later one: at or after `since`, strictly after `after`. */
export function isIndexCandidate(entry: IndexEntry, request: IndexRequest): boolean {
  if (request.since !== undefined && entry.storedAt.getTime() < request.since.getTime()) return false;
  return request.after === undefined || compareIndexEntries(entry, request.after) > 0;
}

/**
 * One page out of entries already in index order. A token is given only when more entries
 * follow, so the last page never comes back with a token.
 */
export function pageOfSortedIndex(sorted: readonly IndexEntry[], request: IndexRequest): IndexPage {
  const candidates = sorted.filter((entry) => isIndexCandidate(entry, request));
  const entries = candidates.slice(0, request.limit).map((e) => ({
    module: e.module,
    version: e.version,
    storedAt: new Date(e.storedAt.getTime()),
  }));
  const last = entries[entries.length - 1];
  return candidates.length > request.limit && last
    ? { entries, nextPageToken: encodeIndexToken(last) }
    : { entries };
}
