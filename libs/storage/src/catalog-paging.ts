import { errors } from '@modproxy/errors';
import { isCanonicalVersion, isValidModulePath } from '@modproxy/gomod';
import type { CatalogOptions, CatalogPage, ModuleVersionRef } from './module-storage';
import { decodePageToken, encodePageToken } from './page-token';

/** Largest page a catalog call may ask for. */
export const MAX_CATALOG_PAGE_SIZE = 10_000;

/**
 * Catalog order: module path, then version, each in plain byte order. Valid module paths and
 * versions are ASCII, so UTF-16 code unit order is byte order, the order a database index or
 * a key-value store gives for free.
 */
export function compareCatalogEntries(a: ModuleVersionRef, b: ModuleVersionRef): number {
  if (a.module !== b.module) return a.module < b.module ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  return 0;
}

/** The page token naming `last`, the final entry of a page: base64url of a JSON pair. */
export function encodeCatalogToken(last: ModuleVersionRef): string {
  return encodePageToken([last.module, last.version]);
}

/** The entry a page token names; invalid-argument for anything {@link encodeCatalogToken} did not make. */
export function decodeCatalogToken(op: string, token: string): ModuleVersionRef {
  return decodePageToken(
    op,
    token,
    'catalog',
    2,
    ([module, version]) =>
      typeof module === 'string' &&
      typeof version === 'string' &&
      isValidModulePath(module) &&
      isCanonicalVersion(version)
        ? { module, version }
        : undefined,
    encodeCatalogToken,
  );
}

export interface CatalogRequest {
  pageSize: number;
  /** Entries up to and including this one were on earlier pages. */
  after: ModuleVersionRef | undefined;
}

/** Validates page size and token; invalid-argument when either is unusable. */
export function parseCatalogOptions(op: string, options: CatalogOptions): CatalogRequest {
  const { pageSize, pageToken } = options;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_CATALOG_PAGE_SIZE) {
    throw errors.invalidArgument(op, `pageSize must be an integer from 1 to ${MAX_CATALOG_PAGE_SIZE}`);
  }
  const after = pageToken === undefined || pageToken === '' ? undefined : decodeCatalogToken(op, pageToken);
  return { pageSize, after };
}

/**
 * One page out of entries already in catalog order. A token is given only when more entries
 * follow, so the last page never comes back empty-handed with a token.
 */
export function pageOfSorted(sorted: readonly ModuleVersionRef[], request: CatalogRequest): CatalogPage {
  let start = 0;
  if (request.after) {
    const after = request.after;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareCatalogEntries(sorted[mid] as ModuleVersionRef, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const entries = sorted
    .slice(start, start + request.pageSize)
    .map((e) => ({ module: e.module, version: e.version }));
  const last = entries[entries.length - 1];
  const more = start + request.pageSize < sorted.length;
  return more && last ? { entries, nextPageToken: encodeCatalogToken(last) } : { entries };
}
