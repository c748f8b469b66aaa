import { createHash } from 'node:crypto';

/** The files of a version the cache holds; list and latest move, so they are never cached. */
export type CachedFile = 'info' | 'mod' | 'zip';

/** One version's key: module paths cannot contain `@`, so `module@version` is unambiguous. */
export function versionKey(module: string, version: string): string {
  return `${module}@${version}`;
}

/** A file's key in the memory tier. */
export function fileKey(file: CachedFile, key: string): string {
  return `${file} ${key}`;
}

/**
 * The name a version's zip has on disk: a digest of its key, so that no module path (mixed case,
 * `!`, 255-byte elements) ever becomes a file name, and an invalidation finds the file from the
 * module and version alone.
 */
export function diskName(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
