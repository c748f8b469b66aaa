import { errors } from '@modproxy/errors';
import { checkModulePath, unescapePath } from '@modproxy/gomod';

export type VersionsRequest = { kind: 'list' | 'latest'; module: string };

const MAX_PATH_LENGTH = 1024;
const LIST = /^\/(.+)\/@v\/list$/;
const LATEST = /^\/(.+)\/@latest$/;

/**
 * `/<escaped module>/@v/list` and `/<escaped module>/@latest` as an unescaped, valid module
 * path; undefined for any other path (lathens serves only these two). Throws
 * `invalid-argument` for a bad module path.
 */
export function parseVersionsPath(rawPath: string): VersionsRequest | undefined {
  const op = 'lathens.parse';
  if (rawPath.length > MAX_PATH_LENGTH)
    throw errors.invalidArgument(op, `request path longer than ${MAX_PATH_LENGTH} characters`);
  if (/%(2f|5c|00)/i.test(rawPath) || rawPath.includes('\\'))
    throw errors.invalidArgument(op, 'encoded path separators are not allowed');
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw errors.invalidArgument(op, 'malformed percent-encoding in path');
  }
  const list = LIST.exec(path);
  const latest = list ? undefined : LATEST.exec(path);
  const escaped = list?.[1] ?? latest?.[1];
  if (escaped === undefined) return undefined;
  const module = unescapePath(escaped);
  checkModulePath(module);
  return { kind: list ? 'list' : 'latest', module };
}
