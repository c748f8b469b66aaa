import { posix } from 'node:path';

interface SeenPath {
  path: string;
  isDir: boolean;
}

/**
 * Finds zip entries that would land on the same file on a case-insensitive file system, or
 * that make one name both a file and a directory (golang.org/x/mod/zip collisionChecker).
 */
export class CollisionChecker {
  private readonly seen = new Map<string, SeenPath>();

  /** The problem with adding `path`, or undefined; records it and its parent directories. */
  check(path: string, isDir: boolean): string | undefined {
    const key = foldCase(path);
    const other = this.seen.get(key);
    if (other) {
      if (other.path !== path) return `case-insensitive file name collision: "${other.path}" and "${path}"`;
      if (other.isDir !== isDir) return `entry "${path}" is both a file and a directory`;
      if (!isDir) return `multiple entries for file "${path}"`;
    } else {
      this.seen.set(key, { path, isDir });
    }
    const parent = posix.dirname(path);
    return parent === '.' ? undefined : this.check(parent, true);
  }
}

/**
 * A representative of each character's case-folding class, close to Go's simple folding:
 * k, K and the Kelvin sign fold together, as do s, S and long s, while characters whose
 * upper case is several characters (ß → SS) fold only with their single-character partners.
 */
function foldCase(s: string): string {
  let out = '';
  for (const ch of s) {
    if (ch.charCodeAt(0) < 0x80) {
      out += ch.toLowerCase();
      continue;
    }
    const upper = ch.toUpperCase();
    const base = [...upper].length === 1 ? upper : ch;
    const lower = base.toLowerCase();
    out += [...lower].length === 1 ? lower : base;
  }
  return out;
}
