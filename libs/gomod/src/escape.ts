import { errors } from '@modproxy/errors';
import { explainModulePath, versionElementProblem } from './path';

/**
 * Case-encoding of module paths and versions for URLs and file names (x/mod module
 * EscapePath & co.): each upper-case letter becomes `!` + its lower-case form, so that two
 * modules differing only in case never share a path on a case-insensitive file system.
 */

function escapeString(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

/** undefined when `escaped` is not a well-formed escaping (upper case, stray `!`, non-ASCII). */
function unescapeString(escaped: string): string | undefined {
  let out = '';
  let bang = false;
  for (const c of escaped) {
    if (c.charCodeAt(0) >= 0x80) return undefined;
    if (bang) {
      bang = false;
      if (c < 'a' || c > 'z') return undefined;
      out += c.toUpperCase();
      continue;
    }
    if (c === '!') {
      bang = true;
      continue;
    }
    if (c >= 'A' && c <= 'Z') return undefined;
    out += c;
  }
  return bang ? undefined : out;
}

/** Escapes a module path after checking it is valid; throws invalid-argument otherwise. */
export function escapePath(path: string): string {
  const problem = explainModulePath(path);
  if (problem) {
    throw errors.invalidArgument('gomod.escapePath', `malformed module path "${path}": ${problem}`, {
      module: path,
    });
  }
  return escapeString(path);
}

/** Inverse of {@link escapePath}; rejects input that is not the escaping of a valid module path. */
export function unescapePath(escaped: string): string {
  const path = unescapeString(escaped);
  if (path === undefined) {
    throw errors.invalidArgument('gomod.unescapePath', `invalid escaped module path "${escaped}"`, {
      module: escaped,
    });
  }
  const problem = explainModulePath(path);
  if (problem) {
    throw errors.invalidArgument(
      'gomod.unescapePath',
      `invalid escaped module path "${escaped}": ${problem}`,
      {
        module: path,
      },
    );
  }
  return path;
}

/**
 * Escapes a version (or any version query such as a branch name): it must be usable as a
 * single file name and must not contain `!`.
 */
export function escapeVersion(v: string): string {
  // Non-ASCII letters pass as a file name but have no case-escaping, so they are refused here.
  if (versionElementProblem(v) !== undefined || v.includes('!') || /[^\x00-\x7f]/.test(v)) {
    throw errors.invalidArgument('gomod.escapeVersion', `invalid version "${v}": disallowed version string`, {
      version: v,
    });
  }
  return escapeString(v);
}

/** Inverse of {@link escapeVersion}. */
export function unescapeVersion(escaped: string): string {
  const v = unescapeString(escaped);
  if (v === undefined) {
    throw errors.invalidArgument('gomod.unescapeVersion', `invalid escaped version "${escaped}"`, {
      version: escaped,
    });
  }
  const problem = versionElementProblem(v);
  if (problem) {
    throw errors.invalidArgument(
      'gomod.unescapeVersion',
      `invalid escaped version "${escaped}": ${problem}`,
      {
        version: v,
      },
    );
  }
  return v;
}
