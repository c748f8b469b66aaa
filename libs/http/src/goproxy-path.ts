import { errors } from '@modproxy/errors';
import { unescapePath, unescapeVersion } from '@modproxy/gomod';

export type GoproxyRequest =
  | { kind: 'list'; module: string }
  | { kind: 'latest'; module: string }
  | { kind: 'info' | 'mod' | 'zip'; module: string; version: string };

/** Longer paths than this are not module requests; refuse them before any work. */
export const MAX_PATH_LENGTH = 1024;
/**
 * Longer path elements (escaped, as they name files in a module cache or disk storage) than
 * this fit no file system: the go command could never have downloaded such a module.
 */
export const MAX_ELEMENT_LENGTH = 255;

const LIST = /^\/(.+)\/@v\/list$/;
const LATEST = /^\/(.+)\/@latest$/;
// Module paths cannot contain '@', so the first "/@v/" is the boundary; a version query
// (a branch name) may itself contain slashes.
const FILE = /^\/([^@]+)\/@v\/(.+)\.(info|mod|zip)$/;

/**
 * Parses a GOPROXY protocol path (`/<escaped module>/@v/<escaped version>.zip` and friends)
 * into an unescaped module path and version. Returns undefined for paths that are not part
 * of the protocol; throws `invalid-argument` for protocol paths with bad input.
 */
export function parseGoproxyPath(rawPath: string): GoproxyRequest | undefined {
  const op = 'proxy.parse';
  if (rawPath.length > MAX_PATH_LENGTH) {
    throw errors.invalidArgument(op, `request path longer than ${MAX_PATH_LENGTH} characters`);
  }
  // Percent-encoded separators would let one path name another file; the protocol never needs them.
  if (/%(2f|5c|00)/i.test(rawPath) || rawPath.includes('\\')) {
    throw errors.invalidArgument(op, 'encoded path separators are not allowed');
  }
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw errors.invalidArgument(op, 'malformed percent-encoding in path');
  }
  if (path.split('/').some((element) => Buffer.byteLength(element) > MAX_ELEMENT_LENGTH)) {
    throw errors.invalidArgument(op, `path element longer than ${MAX_ELEMENT_LENGTH} bytes`);
  }
  let match = LIST.exec(path);
  if (match) return { kind: 'list', module: unescapePath(match[1] ?? '') };
  match = LATEST.exec(path);
  if (match) return { kind: 'latest', module: unescapePath(match[1] ?? '') };
  match = FILE.exec(path);
  if (match) {
    const module = unescapePath(match[1] ?? '');
    const kind = match[3] as 'info' | 'mod' | 'zip';
    return { kind, module, version: unescapeVersion(match[2] ?? '') };
  }
  return undefined;
}
